"""Tests of evaluation.codes."""
