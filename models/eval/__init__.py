"""Evaluation: full-ranking metrics, degree-group fairness figures and the cross-version compatibility report.
"""
