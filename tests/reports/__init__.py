"""Tests of evaluation.reports."""
