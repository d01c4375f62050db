"""Symbolic layer of gtv: schedules, derivations and closed forms (sympy), and code generation."""

from gtv.theory.schedules import SCHEDULE_NAMES, Schedule, named_schedule, t

__all__ = ["SCHEDULE_NAMES", "Schedule", "named_schedule", "t"]
