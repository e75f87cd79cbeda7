"""Experiments: the written definition of a gameday and its lifecycle as an event-sourced timeline."""
