"""Realistic stand-ins for the values pseudonymization replaces: a name for a name, a date for a
date, an identifier of the same shape for an identifier. The word lists were written by the
Stockade team; every number is from a range that belongs to no one (555-01xx telephone numbers,
SSNs starting with 9, documentation IP addresses and domains)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

FIRST_NAMES = (
    "Avery", "Blake", "Casey", "Dana", "Elliot", "Frances", "Gale", "Harper", "Indra", "Jordan",
    "Kendall", "Logan", "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Reese", "Sasha", "Tatum",
)
LAST_NAMES = (
    "Abernathy", "Bellweather", "Castellano", "Delacroix", "Everhart", "Fairbanks", "Galloway",
    "Hollister", "Ingleby", "Jessup", "Kingsley", "Lindqvist", "Merriweather", "Northcott",
    "Oyelaran", "Pemberton", "Quintero", "Rutherford", "Stanhope", "Thackeray",
)
STREETS = ("Alder", "Birchwood", "Cedar Hollow", "Dunmore", "Elmstead", "Foxglove", "Grantham", "Heron")
SUFFIXES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court")
PLACES = ("Fairview", "Riverton", "Maple Grove", "Lakeside", "Cedar Falls", "Brookhaven", "Ashford")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)


def _name(rng: random.Random, value: str) -> str:
    first = rng.choice(FIRST_NAMES)
    return first if len(value.split()) == 1 else f"{first} {rng.choice(LAST_NAMES)}"


def _date(rng: random.Random, value: str) -> str:
    year, month, day = rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28)
    if "/" in value:
        return f"{month:02d}/{day:02d}/{year}"
    if "-" in value and value[:4].isdigit():
        return f"{year}-{month:02d}-{day:02d}"
    return f"{MONTHS[month - 1]} {day}, {year}"


def _phone(rng: random.Random, _value: str) -> str:
    return f"({rng.randint(201, 989)}) 555-01{rng.randint(0, 99):02d}"


def _email(rng: random.Random, _value: str) -> str:
    return f"{rng.choice(FIRST_NAMES).lower()}.{rng.choice(LAST_NAMES).lower()}@example.org"


def _ssn(rng: random.Random, _value: str) -> str:
    return f"9{rng.randint(0, 99):02d}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def _url(rng: random.Random, _value: str) -> str:
    return f"https://www.example.org/{rng.choice(LAST_NAMES).lower()}"


def _ip(rng: random.Random, _value: str) -> str:
    return f"192.0.2.{rng.randint(1, 254)}"


def _address(rng: random.Random, _value: str) -> str:
    return f"{rng.randint(10, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"


def _place(rng: random.Random, _value: str) -> str:
    return rng.choice(PLACES)


def _age(rng: random.Random, _value: str) -> str:
    return str(rng.randint(90, 99))  # still over 89: the reader learns no more, and no less


def _same_shape(rng: random.Random, value: str) -> str:
    """Each digit another digit, each letter another letter of its case; the rest kept."""
    def swap(char: str) -> str:
        if char.isdigit():
            return rng.choice(string.digits)
        if char.isascii() and char.isalpha():
            return rng.choice(string.ascii_uppercase if char.isupper() else string.ascii_lowercase)
        return char

    return "".join(swap(char) for char in value)


MAKERS: dict[str, Callable[[random.Random, str], str]] = {
    "PERSON": _name,
    "DATE_TIME": _date,
    "PHONE_NUMBER": _phone,
    "FAX_NUMBER": _phone,
    "EMAIL_ADDRESS": _email,
    "US_SSN": _ssn,
    "URL": _url,
    "IP_ADDRESS": _ip,
    "STREET_ADDRESS": _address,
    "LOCATION": _place,
    "AGE_OVER_89": _age,
}


def surrogate(rng: random.Random, entity: str, value: str) -> str:
    return MAKERS.get(entity, _same_shape)(rng, value)
