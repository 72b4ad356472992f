"""测评码: generation, keyed hashes, batches, voiding, the CSV and the A4 slips, the CLI."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from pathlib import Path

import pytest
from flask import Flask

from evaluation.codes import codes, slips
from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Code, CodeBatch, CodeState
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from tests.helpers.voters import issue, open_with_codes
from tests.helpers.web import csrf_token

CODE_SHAPE = re.compile(r"^[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){4}$")


# --- pure parts --------------------------------------------------------------------------------


def test_alphabet_has_no_look_alikes_and_codes_carry_80_bits() -> None:
    assert not set("01OIL") & set(codes.ALPHABET)
    assert len(set(codes.ALPHABET)) == len(codes.ALPHABET) == 31
    assert codes.entropy_bits() >= 80
    many = {codes.new_code() for _ in range(2000)}
    assert len(many) == 2000
    assert all(CODE_SHAPE.match(c) for c in many)


def test_normalise_ignores_case_dashes_spaces_and_full_width() -> None:
    code = "K7QM-4XPA-R9TW-HC3N-8WZE"
    expected = "K7QM4XPAR9TWHC3N8WZE"
    for typed in (
        code,
        code.lower(),
        " k7qm 4xpa r9tw hc3n 8wze ",
        "Ｋ７ＱＭ－４ＸＰＡ－Ｒ９ＴＷ－ＨＣ３Ｎ－８ＷＺＥ",
        "https://ceping.example.gov.cn/v/" + code,
    ):
        assert codes.normalise(typed) == expected
        assert codes.looks_like_code(typed)
    assert not codes.looks_like_code("K7QM-4XPA")
    assert not codes.looks_like_code("O7QM-4XPA-R9TW-HC3N-8WZE")  # O is not in the alphabet


def test_digest_is_hmac_sha256_of_the_normalised_code(app: Flask) -> None:
    key = codes.hash_key()
    expected = hmac.new(key, b"code:K7QM4XPAR9TWHC3N8WZE", hashlib.sha256).hexdigest()
    assert codes.code_digest("k7qm-4xpa-r9tw-hc3n-8wze") == expected
    # Not a bare hash: without the key nobody can test a guess against the table.
    assert expected != hashlib.sha256(b"K7QM4XPAR9TWHC3N8WZE").hexdigest()
    assert codes.receipt_digest("K7QM4XPAR9TWHC3N8WZE") != expected


def test_hash_key_comes_from_config_or_secret_key(app: Flask) -> None:
    derived = codes.hash_key()
    assert derived != app.config["SECRET_KEY"].encode()
    app.config["CODE_HASH_KEY"] = "separate-key"
    assert codes.hash_key() == b"separate-key"
    assert codes.code_digest("K7QM4XPAR9TWHC3N8WZE") != codes.code_digest(
        "K7QM4XPAR9TWHC3N8WZE", derived
    )


def test_batch_qr_equals_qrcode_for_many_links() -> None:
    template = "https://ceping.example.gov.cn/v/" + codes.new_code()
    batch = slips.BatchQR(template)
    for _ in range(150):
        url = "https://ceping.example.gov.cn/v/" + codes.new_code()
        assert batch.rows(url) == slips.qr_rows(url, batch.version)
    other_length = "https://ceping.example.gov.cn/v/SHORT"
    assert batch.rows(other_length) == slips.qr_rows(other_length)


def test_qr_rectangles_reproduce_the_qr_matrix() -> None:
    url = "https://ceping.example.gov.cn/v/K7QM-4XPA-R9TW-HC3N-8WZE"
    rows = slips.qr_rows(url)
    n = len(rows)
    ops = slips.qr_path_operators(rows, 10.0, 20.0, 99.0).splitlines()
    assert ops[0] == f"q {99 / n:.4f} 0 0 {99 / n:.4f} 10.00 20.00 cm" and ops[-1] == "f Q"
    drawn = [["0"] * n for _ in range(n)]
    for line in ops[1:-1]:
        x, y, w, _h, op = line.split()
        assert op == "re"
        for col in range(int(x), int(x) + int(w)):
            drawn[n - 1 - int(y)][col] = "1"
    assert ["".join(r) for r in drawn] == rows


# --- batches -----------------------------------------------------------------------------------


def test_issue_stores_only_keyed_hashes_and_audits_counts(app: Flask, sample_round) -> None:
    plain = issue(sample_round, "中层干部", 25)
    assert len(plain) == len(set(plain)) == 25
    stored = db.session.execute(db.select(Code)).scalars().all()
    assert len(stored) == 25
    assert {c.digest for c in stored} == {codes.code_digest(p) for p in plain}
    assert all(c.state == CodeState.UNUSED for c in stored)
    batch = db.session.execute(db.select(CodeBatch)).scalar_one()
    assert (batch.count, batch.stratum.name, batch.void) == (25, "中层干部", False)
    entry = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "codes.issue")
    ).scalar_one()
    assert entry.details["count"] == 25
    audit_text = str(entry.details)
    assert not any(codes.normalise(p) in audit_text or p in audit_text for p in plain)


def test_issue_refuses_bad_counts_unknown_strata_and_closed_rounds(app: Flask, sample_round):
    with pytest.raises(InputError, match="之间"):
        codes.issue_batch(sample_round, sample_round.strata[0], 0, actor="t")
    with pytest.raises(InputError, match="之间"):
        codes.issue_batch(sample_round, sample_round.strata[0], codes.MAX_BATCH + 1, actor="t")
    with pytest.raises(InputError, match="没有测评人员类别“不存在”"):
        codes.stratum_named(sample_round, "不存在")
    with pytest.raises(InputError, match="^请填写数量$"):
        codes.parse_count("")
    with pytest.raises(InputError, match="数量“abc”不是整数"):
        codes.parse_count(" abc ")
    open_with_codes(sample_round, 1)
    with write_transaction():
        lifecycle.close_round(sample_round, actor="t")
    db.session.commit()
    with pytest.raises(StateError):
        codes.issue_batch(sample_round, sample_round.strata[0], 5, actor="t")
    assert db.session.execute(db.select(db.func.count()).select_from(Code)).scalar() == 3


def test_void_batch_voids_unused_codes_keeps_used_ones(app: Flask, client, sample_round) -> None:
    from tests.helpers.voters import Voter, code_state, full_answers, voted

    lost = issue(sample_round, "一般干部", 4)
    lifecycle.open_round(sample_round, actor="t")
    db.session.commit()
    assert voted(Voter(client).vote(lost[0], full_answers(sample_round)))
    batch = db.session.execute(db.select(CodeBatch)).scalar_one()
    with pytest.raises(InputError, match="原因"):
        codes.void_batch(sample_round, batch.id, actor="t", reason=" ")
    # While open every code of the batch is marked void alike, the one that voted too (its
    # row does not know; the close marks it used again): the count says nothing either.
    assert codes.void_batch(sample_round, batch.id, actor="t", reason="遗失") == 4
    db.session.commit()
    states = sorted(code_state(code).value for code in lost)
    assert states == ["used", "void", "void", "void"]
    assert client.get(f"/v/{lost[1]}").status_code == 404
    assert client.get(f"/v/{lost[0]}").status_code == 409
    with pytest.raises(InputError, match="已作废"):
        codes.void_batch(sample_round, batch.id, actor="t", reason="遗失")


def test_csv_has_code_url_rows_from_public_base_url(app: Flask, sample_round) -> None:
    issued = codes.issue_batch(sample_round, sample_round.strata[0], 3, actor="t")
    rows = list(csv.reader(io.StringIO(codes.csv_text(issued))))
    assert rows[0] == ["code", "url"]
    assert [r[0] for r in rows[1:]] == list(issued.codes)
    assert all(r[1] == f"https://ceping.example.gov.cn/v/{r[0]}" for r in rows[1:])


def test_slips_pdf_is_a4_with_cjk_font_and_one_slip_per_code(app: Flask, sample_round) -> None:
    issued = codes.issue_batch(sample_round, sample_round.strata[1], 23, actor="t")
    pdf = slips.render_slips(
        round_title=issued.round_title,
        stratum_name=issued.stratum_name,
        codes=issued.codes,
        urls=issued.urls(),
        entry_url="https://ceping.example.gov.cn/v",
    )
    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 3 or b"/Count 3" in pdf
    assert b"/Count 3" in pdf  # 23 slips, ten to a page
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf  # A4
    assert b"WenQuanYi" in pdf or b"CJK" in pdf  # the CJK font is embedded


def _pdftotext(pdf: bytes, tmp_path: Path) -> str | None:
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        return None
    path = tmp_path / "slips.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def _slips_pdf(issued: codes.IssuedBatch, serials: tuple[str, ...] = ()) -> bytes:
    """The batch's slips as the codes page prints them."""
    return slips.render_slips(
        round_title=issued.round_title,
        stratum_name=issued.stratum_name,
        codes=issued.codes,
        urls=issued.urls(),
        entry_url="https://ceping.example.gov.cn/v",
        serials=serials,
    )


def test_slips_text_holds_code_title_stratum_instruction(app, sample_round, tmp_path) -> None:
    issued = codes.issue_batch(sample_round, sample_round.strata[0], 2, actor="t")
    pdf = _slips_pdf(issued)
    text = _pdftotext(pdf, tmp_path)
    assert text is not None, "pdftotext (poppler-utils) is needed to read the slips"
    for code in issued.codes:
        assert code in text
    assert "班子成员" in text
    assert "民主测评" in text
    assert "扫码" in text


def test_a_slips_serial_is_printed_clear_of_its_heading(app, sample_round, tmp_path) -> None:
    import subprocess

    issued = codes.issue_batch(sample_round, sample_round.strata[1], 2, actor="t")
    path = tmp_path / "slips.pdf"
    path.write_bytes(_slips_pdf(issued, ("B-0021", "B-0022")))
    words = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    boxes = [
        (float(a), float(b), float(c), float(d), w)
        for a, b, c, d, w in re.findall(
            r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', words
        )
    ]
    headings = [b for b in boxes if "一次性测评码" in b[4]]
    serials = [b for b in boxes if b[4] in ("编号", "B-0021", "B-0022")]
    assert len(headings) == 2 and len(serials) == 4
    for a in headings:
        for b in serials:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, (a, b)


def test_slips_qr_codes_scan_to_their_links(app, sample_round, tmp_path) -> None:
    """A page rasterised at print resolution (300 dpi), each slip read by a real QR decoder.

    Each cut-out slip is decoded on its own, as a phone camera sees it. (zbarimg reading a whole
    page of ten codes at once now and then misses one that it reads fine on its own slip.)
    """
    import shutil
    import subprocess

    from PIL import Image
    from reportlab.lib.pagesizes import A4

    assert shutil.which("pdftoppm") and shutil.which("zbarimg"), "make test installs them"
    issued = codes.issue_batch(sample_round, sample_round.strata[0], 10, actor="t")
    pdf = tmp_path / "slips.pdf"
    pdf.write_bytes(_slips_pdf(issued))
    dpi = 300
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(tmp_path / "page")], check=True
    )
    page = Image.open(next(tmp_path.glob("page*.png")))
    px = dpi / 72  # pixels per PDF point
    slip_w = (A4[0] - 2 * slips.MARGIN_X) / slips.COLUMNS
    slip_h = (A4[1] - 2 * slips.MARGIN_Y) / slips.ROWS
    for slot, url in enumerate(issued.urls()):
        left = slips.MARGIN_X + (slot % slips.COLUMNS) * slip_w
        top = slips.MARGIN_Y + (slot // slips.COLUMNS) * slip_h
        slip = tmp_path / f"slip{slot}.png"
        box = (left * px, top * px, (left + slip_w) * px, (top + slip_h) * px)
        page.crop(tuple(round(v) for v in box)).save(slip)
        out = subprocess.run(["zbarimg", "-q", "--raw", str(slip)], capture_output=True)
        assert out.stdout.decode().split() == [url], f"slip {slot} does not scan to its link"


# --- the command line --------------------------------------------------------------------------


def test_cli_issue_writes_csv_and_pdf(app: Flask, runner, sample_round, tmp_path) -> None:
    out_csv = tmp_path / "codes.csv"
    out_pdf = tmp_path / "slips.pdf"
    result = runner.invoke(
        args=[
            "codes",
            "issue",
            str(sample_round.id),
            "--stratum",
            "一般干部",
            "--count",
            "12",
            "--csv",
            str(out_csv),
            "--pdf",
            str(out_pdf),
        ]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    assert rows[0] == ["code", "url"] and len(rows) == 13
    assert all(CODE_SHAPE.match(r[0]) for r in rows[1:])
    assert out_pdf.read_bytes().startswith(b"%PDF")
    digests = set(db.session.execute(db.select(Code.digest)).scalars())
    assert digests == {codes.code_digest(r[0]) for r in rows[1:]}
    # The codes are in the files only, never in the command's output.
    assert not any(r[0] in result.output for r in rows[1:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stratum", "无此类别", "--count", "3"], "没有测评人员类别"),
        (["--stratum", "班子成员", "--count", "0"], "之间"),
        (["--stratum", "班子成员", "--count", "abc"], "abc"),
    ],
)
def test_cli_issue_refuses_bad_input_in_one_line(
    app, runner, sample_round, tmp_path, args, message
):
    out_csv = tmp_path / "codes.csv"
    result = runner.invoke(
        args=["codes", "issue", str(sample_round.id), *args, "--csv", str(out_csv)]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out_csv.exists()
    assert db.session.execute(db.select(db.func.count()).select_from(Code)).scalar() == 0


def test_a_stratum_named_like_another_strata_id_is_never_taken_for_it(
    app: Flask, client, auth, users, runner, sample_round, tmp_path
) -> None:
    """A stratum's name is free text and may read like another stratum's id: the page sends
    the id of the stratum chosen, the command line names one, and neither is taken for the
    other (slips issued to the wrong stratum would weight and pool the wrong ballots)."""
    named, chosen = sample_round.strata[0], sample_round.strata[1]
    named.name = str(chosen.id)
    db.session.commit()

    def issued_to(stratum_id: int) -> int:
        query = db.select(db.func.count()).where(Code.stratum_id == stratum_id)
        return int(db.session.execute(query.select_from(Code)).scalar_one())

    auth.login()
    url = f"/rounds/{sample_round.id}/codes"
    page = client.get(url).get_data(as_text=True)
    assert f'name="stratum" value="{chosen.id}"' in page
    response = client.post(
        f"{url}/issue",
        data={
            "csrf_token": csrf_token(client, url),
            "stratum": str(chosen.id),
            "count": "2",
            "format": "csv",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert (issued_to(chosen.id), issued_to(named.id)) == (2, 0)

    result = runner.invoke(
        args=[
            "codes",
            "issue",
            str(sample_round.id),
            "--stratum",
            str(chosen.id),  # the name of the first stratum
            "--count",
            "3",
            "--csv",
            str(tmp_path / "named.csv"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert (issued_to(chosen.id), issued_to(named.id)) == (2, 3)

    refused = client.post(
        f"{url}/issue",
        data={"csrf_token": csrf_token(client, url), "stratum": "不存在", "count": "1"},
    )
    assert refused.status_code == 400
    assert "请选择测评活动" in refused.get_data(as_text=True)


def test_cli_issue_unknown_round(app: Flask, runner, tmp_path) -> None:
    result = runner.invoke(
        args=[
            "codes",
            "issue",
            "999",
            "--stratum",
            "x",
            "--count",
            "1",
            "--csv",
            str(tmp_path / "c"),
        ]
    )
    assert result.exit_code != 0 and "不存在" in result.output


def test_cli_issue_refuses_a_closed_round(app: Flask, runner, sample_round, tmp_path) -> None:
    open_with_codes(sample_round, 1)
    with write_transaction():
        lifecycle.close_round(sample_round, actor="t")
    db.session.commit()
    out_csv = tmp_path / "codes.csv"
    result = runner.invoke(
        args=["codes", "issue", str(sample_round.id), "--stratum", "班子成员", "--count", "2"]
        + ["--csv", str(out_csv)]
    )
    assert result.exit_code == 1
    assert "已结束" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out_csv.exists()
