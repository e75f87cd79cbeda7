"""Saved questions about an experiment (``hub questions list|ask``); see ``library``."""

from hub.questions.library import QUESTIONS, Parameter, Question, ask, get, lit

__all__ = ["QUESTIONS", "Parameter", "Question", "ask", "get", "lit"]
