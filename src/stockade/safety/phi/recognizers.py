"""Recognizers for the Safe Harbor identifiers Presidio has none for (its health-plan recognizer
ships disabled, and covers one format).

Most of these identifiers are runs of digits and letters that mean something only by what
precedes them ("MRN", "member ID", "serial no."), so each pattern requires its label just before
the value (a variable-width look-behind: Presidio matches with the ``regex`` module) and the
match is the value alone, which is what gets replaced. Presidio matches case-insensitively; a
``(?-i:...)`` group asks for case where it matters."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

# A label, then an optional "number"/"no."/"#"/"ID" and a separator, then the value.
_NUMBER_WORD = r"(?:\s*(?:number|num\.?|no\.?|nbr|#|id|identifier))?"
_SEPARATOR = r"\s*(?:[:#=]|is)?\s*"
_VALUE = r"(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,19}\b"  # 4 to 20 characters, one digit at least
# A labelled value is surer than spaCy's guesses (0.85), which it overlaps ("member ID X123"
# read as a name).
LABELLED = 0.9
_PHONE = r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}\b"


def _labelled(labels: str) -> str:
    return rf"(?<=\b(?:{labels}){_NUMBER_WORD}{_SEPARATOR}){_VALUE}"


def _recognizer(entity: str, *patterns: tuple[str, float]) -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity=entity,
        name=f"stockade_{entity.lower()}",
        patterns=[Pattern(f"{entity.lower()}_{index}", regex, score) for index, (regex, score) in enumerate(patterns)],
    )


# Capitalised words, as a name is written (1 to 3 of them).
_NAME = r"(?-i:[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})\b"


def custom_recognizers() -> list[PatternRecognizer]:
    return [
        # Names spaCy's small model misses, where what precedes them says they are names.
        _recognizer(
            "PERSON",
            (rf"(?<=\b(?-i:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+){_NAME}", LABELLED),
            (rf"(?<=\b(?:my|his|her|their|the\s+patient's)\s+name\s+is\s+){_NAME}", LABELLED),
        ),
        # Scored above Presidio's phone recognizer (0.4 to 0.75), which finds the same digits.
        _recognizer("FAX_NUMBER", (rf"(?<=\b(?:fax|facsimile){_NUMBER_WORD}{_SEPARATOR}){_PHONE}", 0.95)),
        _recognizer("MEDICAL_RECORD_NUMBER", (_labelled(r"mrn|medical\s+record|chart|patient\s+id"), LABELLED)),
        _recognizer(
            "HEALTH_PLAN_NUMBER",
            (_labelled(
                r"member|subscriber|beneficiary|medicare|medicaid|health\s+plan|insurance|policy|group|plan"
            ), LABELLED),
        ),
        _recognizer("ACCOUNT_NUMBER", (_labelled(r"account|acct|billing"), LABELLED)),
        _recognizer(
            "LICENSE_NUMBER",
            (_labelled(r"licen[cs]e|certificate|DEA|NPI|registration|permit"), LABELLED),
        ),
        _recognizer(
            "VEHICLE_IDENTIFIER",
            # A VIN: 17 characters, no I, O or Q, letters and digits both.
            (r"\b(?-i:(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])[A-HJ-NPR-Z0-9]{17})\b", 0.8),
            (rf"(?<=\b(?:vin|plate|licen[cs]e\s+plate|tag){_NUMBER_WORD}{_SEPARATOR})(?=[A-Z0-9 -]*\d)[A-Z0-9][A-Z0-9 -]{{1,8}}[A-Z0-9]\b", LABELLED),
        ),
        _recognizer(
            "DEVICE_IDENTIFIER",
            (_labelled(r"serial|device|udi|imei|implant|pacemaker|model\s+and\s+serial"), LABELLED),
        ),
        _recognizer(
            "ZIP_CODE",
            (r"(?<=\bzip(?:\s*code)?\s*[:#]?\s*)\d{5}(?:-\d{4})?\b", LABELLED),
            # After a state's two capitals and a space, as in an address: "Boston, MA 02118".
            (r"(?<=(?-i:\b[A-Z]{2})\s)\d{5}(?:-\d{4})?\b", LABELLED),
        ),
        _recognizer(
            "STREET_ADDRESS",
            (
                r"\b\d{1,6}\s+(?:(?-i:[A-Z][a-z]+|[0-9]+(?:st|nd|rd|th))\s+){1,4}"
                r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl"
                r"|terrace|ter|circle|cir|parkway|pkwy|highway|hwy)\b\.?"
                r"(?:,?\s*(?:apt|apartment|suite|ste|unit|#)\.?\s*[A-Z0-9-]+)?",
                0.85,
            ),
        ),
        _recognizer(
            "AGE_OVER_89",
            # 90 to 129, as an age: "93 years old", "93-year-old", "93 yo", "aged 93", "age: 93".
            (r"\b(?:9\d|1[0-2]\d)(?=[\s-]*(?:years?|yrs?|y/?o)\b)", 0.85),
            (r"(?<=\b(?:aged?|age\s+of)\s*:?\s*)(?:9\d|1[0-2]\d)\b", 0.85),
        ),
    ]
