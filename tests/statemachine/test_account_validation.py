"""The Validate step's Lambda handler, run directly on good and bad requests and forms.

moto cannot run Lambda code without Docker, so the handler is tested here on its own; the
definition tests check that the error it raises is the one the state machine catches.
"""
from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from functions.account_validation.handler import InvalidAccountForm, handler, validate_form

# What API Gateway puts in the execution input from a verified Cognito ID token (claims are strings there).
IDENTITY = {"student_id": "1234567", "email": "Ana.Lopez@Uni.EDU", "email_verified": "true"}

# The @example cases of test_normalising_twice_changes_nothing, all valid forms.
EXPLICIT_EXAMPLES = 5

GOOD = {"student_id": "1234567", "email": "ana.lopez@uni.edu", "first_name": "Ana", "last_name": "Lopez"}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (GOOD, GOOD),
        (
            {"student_id": " 0012345 ", "email": "  Ana.Lopez@Uni.EDU ", "first_name": "  ana \t maria ",
             "last_name": "LOPEZ   GARCIA", "newsletter": True},
            {"student_id": "0012345", "email": "ana.lopez@uni.edu", "first_name": "Ana Maria",
             "last_name": "Lopez Garcia"},
        ),
        (
            {"student_id": "123456789", "email": "o.neil+advising@mail.example.ac.uk", "first_name": "mary-jane",
             "last_name": "o'neil"},
            {"student_id": "123456789", "email": "o.neil+advising@mail.example.ac.uk", "first_name": "Mary-Jane",
             "last_name": "O'Neil"},
        ),
        # Mixed case is the student's own spelling and is kept; NBSP counts as whitespace; NFC composes accents.
        (
            {"student_id": "7654321", "email": "x@y.io", "first_name": "Jose\u0301\u00a0Luis", "last_name": "McDonald"},
            {"student_id": "7654321", "email": "x@y.io", "first_name": "Jos\u00e9 Luis", "last_name": "McDonald"},
        ),
        (
            {"student_id": "7654321", "email": "x@y.io", "first_name": "ÉLODIE", "last_name": "d’arcy"},
            {"student_id": "7654321", "email": "x@y.io", "first_name": "Élodie", "last_name": "D’Arcy"},
        ),
    ],
)
def test_good_form_becomes_normalised_account(form, expected):
    account = validate_form(form)
    assert account == expected
    assert list(account) == ["student_id", "email", "first_name", "last_name"]


@pytest.mark.parametrize(
    ("form", "problems"),
    [
        ({}, ["student_id is required", "email is required", "first_name is required", "last_name is required"]),
        ({**GOOD, "student_id": 1234567}, ["student_id must be a string"]),
        ({**GOOD, "email": "   "}, ["email is required"]),
        ({**GOOD, "student_id": "123456"}, ["student_id must be 7 to 9 digits"]),
        ({**GOOD, "student_id": "1234567890"}, ["student_id must be 7 to 9 digits"]),
        ({**GOOD, "student_id": "12 34567"}, ["student_id must be 7 to 9 digits"]),
        ({**GOOD, "student_id": "１２３４５６７"}, ["student_id must be 7 to 9 digits"]),
        ({**GOOD, "email": "ana.lopez"}, ["email is not a valid address"]),
        ({**GOOD, "email": "ana..lopez@uni.edu"}, ["email is not a valid address"]),
        ({**GOOD, "email": "ana@localhost"}, ["email is not a valid address"]),
        ({**GOOD, "email": "ana@-uni.edu"}, ["email is not a valid address"]),
        ({**GOOD, "email": "a@" + "b" * 250 + ".edu"}, ["email is not a valid address"]),
        ({**GOOD, "first_name": "R2-D2"}, ["first_name contains characters not allowed in a name: '2'"]),
        ({**GOOD, "last_name": "-- '"}, ["last_name has no letters"]),
        ({**GOOD, "last_name": "A" * 101}, ["last_name is longer than 100 characters"]),
        (
            {"student_id": "12ab", "email": "x@", "first_name": "<b>", "last_name": None},
            ["last_name is required", "student_id must be 7 to 9 digits", "email is not a valid address",
             "first_name contains characters not allowed in a name: '<' '>'"],
        ),
    ],
)
def test_bad_form_raises_invalid_account_form_listing_every_problem(form, problems):
    with pytest.raises(InvalidAccountForm) as raised:
        validate_form(form)
    assert str(raised.value).split("; ") == problems


@pytest.mark.parametrize("form", [None, [], "1234567", ["student_id", "1234567"]])
def test_form_that_is_not_an_object_is_rejected(form):
    with pytest.raises(InvalidAccountForm, match="must be a JSON object"):
        validate_form(form)
    with pytest.raises(InvalidAccountForm, match="must be a JSON object"):
        handler(form, None)
    with pytest.raises(InvalidAccountForm, match="the form must be a JSON object"):
        handler({"identity": IDENTITY, "form": form}, None)


def test_student_id_and_email_come_from_the_verified_identity_not_the_form():
    # Issue 15: the form once named the student; now a form naming another student or address changes nothing.
    form = {"student_id": "7654321", "email": "someone.else@example.com", "first_name": "ana", "last_name": "LOPEZ"}

    account = handler({"identity": IDENTITY, "form": form}, None)

    assert account == {"student_id": "1234567", "email": "ana.lopez@uni.edu", "first_name": "Ana", "last_name": "Lopez"}


@pytest.mark.parametrize(
    ("request_", "problems"),
    [
        ({"form": GOOD}, ["no verified identity: accounts are created only through the signed-in API"]),
        ({"identity": None, "form": GOOD}, ["no verified identity: accounts are created only through the signed-in API"]),
        ({"identity": {**IDENTITY, "email_verified": "false"}, "form": GOOD},
         ["the signed-in student's e-mail address is not verified"]),
        ({"identity": {**IDENTITY, "email_verified": True}, "form": GOOD},
         ["the signed-in student's e-mail address is not verified"]),
        # A claim the token lacks reaches the input as "" (the API's mapping template): the student has no id.
        ({"identity": {**IDENTITY, "student_id": ""}, "form": GOOD}, ["student_id is required"]),
        ({"identity": {**IDENTITY, "email": "not-an-address"}, "form": {**GOOD, "first_name": "R2"}},
         ["email is not a valid address", "first_name contains characters not allowed in a name: '2'"]),
        ({"identity": {"email_verified": "false"}}, ["the signed-in student's e-mail address is not verified",
                                                     "the form must be a JSON object with first_name and last_name"]),
    ],
)
def test_a_request_without_a_verified_identity_is_rejected(request_, problems):
    with pytest.raises(InvalidAccountForm) as raised:
        handler(request_, None)
    assert str(raised.value).split("; ") == problems


def test_error_name_is_what_step_functions_matches():
    # Lambda's Python runtime reports the exception's class name as errorType; Step Functions uses it as the error name.
    with pytest.raises(Exception) as raised:
        handler({"identity": {**IDENTITY, "email": "nope"}, "form": GOOD}, None)
    assert type(raised.value).__name__ == "InvalidAccountForm"


# Letters of every kind, combining marks and the punctuation names may hold, with the letters whose case
# mapping changes length or cannot be undone drawn often (issue 16).
TRICKY_LETTERS = "ßẞŉﬁİıΣσςǄǅǆſ\u0301"
NAME_CHARS = st.one_of(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzÉéÜüABCXYZ'-’." + TRICKY_LETTERS),
    st.characters(categories=("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me")),
)
NAME_PART = st.text(alphabet=NAME_CHARS, min_size=1, max_size=12)


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        # Title-casing never changes a letter's length: ß has no one-letter capital, so it stays ß (not SS or Ss).
        ("ß", "ß"), ("STRAUß", "Strauß"), ("strauß", "Strauß"), ("STRAUẞ", "Strauß"),
        ("ŉ", "ŉ"), ("ﬁ", "ﬁ"),
        # Turkish i: the right mapping depends on the language, so the letters that cannot round-trip stay.
        ("İSTANBUL", "İstanbul"), ("ılgaz", "ılgaz"), ("IŞIK", "Işik"),
        # Greek capital sigma lower-cases to the final form at the end of a word part.
        ("ΟΔΥΣΣΕΥΣ", "Οδυσσευς"), ("ΣΙΣΥΦΟΣ-ΑΣ", "Σισυφος-Ας"),
        ("ǄEMAL", "ǅemal"), ("ǆemal", "ǅemal"),
    ],
)
def test_case_mappings_that_would_change_or_lose_a_letter_are_kept_as_typed(typed, kept):
    assert validate_form({**GOOD, "last_name": typed})["last_name"] == kept


def test_normalising_twice_changes_nothing():
    # A resubmission of an already-normalised account must map to the same item key and attributes.
    # Forms whose generated names have no letters are rightly rejected; `assume` discards them and the
    # count proves the checks ran on the examples and on most drawn cases.
    checked = []

    @given(
        student_id=st.from_regex(r"[0-9]{7,9}", fullmatch=True),
        first=st.lists(NAME_PART, min_size=1, max_size=3),
        last=st.lists(NAME_PART, min_size=1, max_size=3),
        padding=st.sampled_from(["", " ", "  \t", "\u00a0"]),
    )
    @example(student_id="1234567", first=["A"], last=["ß"], padding="")  # issue 16: 'ß' -> 'SS' -> 'Ss'
    @example(student_id="1234567", first=["ŉ"], last=["ﬁ"], padding="")
    @example(student_id="1234567", first=["İ"], last=["ı"], padding=" ")
    @example(student_id="1234567", first=["ΟΔΥΣΣΕΥΣ"], last=["σ", "Σ"], padding="")
    @example(student_id="1234567", first=["ẞ"], last=["ǆ"], padding="\u00a0")
    def check(student_id, first, last, padding):
        form = {
            "student_id": padding + student_id + padding,
            "email": f"{padding}Student.{student_id}@Uni.EDU{padding}",
            "first_name": padding + f"{padding} ".join(first),
            "last_name": f" {padding}".join(last) + padding,
        }
        try:
            account = validate_form(form)
        except InvalidAccountForm:
            account = None
        assume(account is not None)
        assert validate_form(account) == account
        assert account["student_id"] == student_id
        assert account["email"] == f"student.{student_id}@uni.edu"
        checked.append(account)

    check()

    assert len(checked) >= EXPLICIT_EXAMPLES + settings.default.max_examples // 2
