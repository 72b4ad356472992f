"""Form bases every page shares: Chinese messages, and a button that only carries CSRF."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms.meta import DefaultMeta


class ChineseForm(FlaskForm):
    """A FlaskForm whose built-in messages ("不是有效的整数" …) are in Chinese."""

    class Meta:
        locales = ("zh",)

        def get_translations(self, form: Any) -> Any:
            """WTForms' own Chinese catalogue (Flask-WTF's needs Flask-Babel)."""
            return DefaultMeta.get_translations(self, form)  # type: ignore[arg-type]


class ActionForm(ChineseForm):
    """A button that changes something: nothing but the CSRF token."""
