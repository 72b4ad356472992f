"""匿名民主测评系统: the application package.

``create_app`` builds the Flask application (``evaluation.app``). Importing this package loads
nothing else, so the pure cores — ``evaluation.tally.core``, ``evaluation.tally.seal``,
``evaluation.archive.rules``, ``evaluation.ballot_forms`` — can be imported and tested without
Flask or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the application (see ``evaluation.app.create_app``)."""
    # Imported here, not above, only so that importing a pure core does not load Flask.
    from evaluation.app import create_app as create

    return create(config)
