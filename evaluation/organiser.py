"""Organiser pages: rounds, their strata and subjects, ballot preview, state changes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from evaluation.extensions import db
from evaluation.models import Round, Unit
from evaluation.units import subtree_clause

bp = Blueprint("organiser", __name__)


def _visible_rounds() -> list[Round]:
    query = db.select(Round).join(Unit, Round.unit_id == Unit.id)
    if current_user.unit is not None:
        query = query.where(subtree_clause(Unit.path, current_user.unit))
    elif current_user.role != "admin":
        return []
    return list(db.session.execute(query.order_by(Round.year.desc(), Round.id.desc())).scalars())


@bp.route("/")
@login_required
def index() -> Any:
    """The rounds of the user's units, newest first."""
    return render_template("organiser/index.html", rounds=_visible_rounds())
