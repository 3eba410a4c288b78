"""The tutorial's data and exercises, for notebooks and scripts.

Examples
--------
>>> from tarry.tutorial import prepare_flights
>>> callable(prepare_flights)
True
"""

from tarry._tutorial.exercises import (
    Exercise,
    exercises,
    flight_files,
    same_result,
    toy_functions,
)
from tarry._tutorial.flights import COLUMNS, YEARS, prepare_flights

__all__ = [
    "COLUMNS",
    "YEARS",
    "Exercise",
    "exercises",
    "flight_files",
    "prepare_flights",
    "same_result",
    "toy_functions",
]
