"""Tests of evaluation.accounts."""
