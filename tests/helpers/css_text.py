"""Text that exists only in the rendering (CSS counters), read from the accessibility tree."""

from __future__ import annotations

from typing import Any


def progress_text(pg: Any) -> str:
    """What the 已填 line shows: CSS-generated text, read from Chromium's accessibility tree
    (the DOM has no text there; the counter exists only in the rendering)."""
    cdp = pg.context.new_cdp_session(pg)
    try:
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        found = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#ballot-progress"})
        backend = cdp.send("DOM.describeNode", {"nodeId": found["nodeId"]})["node"]
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    by_id = {n["nodeId"]: n for n in nodes}
    [start] = [n for n in nodes if n.get("backendDOMNodeId") == backend["backendNodeId"]]
    parts: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("role", {}).get("value") == "StaticText":
            parts.append(str(node.get("name", {}).get("value", "")))
            return
        for child in node.get("childIds", []):
            if child in by_id:
                walk(by_id[child])

    walk(start)
    return "".join(parts).strip()
