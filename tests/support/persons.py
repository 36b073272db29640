"""Made-up people for the tests: national identity numbers that pass the check digits."""

from __future__ import annotations


def fnr(first_nine: str) -> str:
    """A fødselsnummer with valid check digits, computed the long way round."""
    digits = [int(c) for c in first_nine]
    for weights in ((3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)):
        total = 0
        for weight, digit in zip(weights, digits, strict=False):
            total += weight * digit
        check = 11 - total % 11
        digits.append(0 if check == 11 else check)
    assert all(d < 10 for d in digits), "pick other digits: this one has no check digit"
    return "".join(map(str, digits))
