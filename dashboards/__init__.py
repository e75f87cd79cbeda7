"""Grafana dashboard, annotation and alert-rule generation for experiments.

Nothing is generated yet: the first dashboards come with the experiment model they draw from.
"""
