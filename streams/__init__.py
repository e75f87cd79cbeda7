"""The Faust application and its agents; agents stay thin and call plain functions in ``hub``."""
