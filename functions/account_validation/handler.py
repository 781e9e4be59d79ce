"""Validate step of the student account workflow: the first Task of statemachine/account_workflow.asl.json.

API Gateway verifies the student's Cognito ID token and starts the workflow with
`{"identity": {student_id, email, email_verified} from the token's claims, "form": the posted body}`;
this Lambda checks both and returns the normalised account that the later states (DynamoDB
getItem/putItem, SQS notify) use. The student id and e-mail are taken only from the identity: a
form naming another student, or another address, changes nothing (issue 15).
A bad form raises `InvalidAccountForm`: Lambda reports the exception's class name as `errorType`,
which Step Functions uses as the error name, so the definition's Catch routes it to a Fail state.

Rules (see docs/account-workflow.md):
- identity: present, with email_verified "true" (claims reach the input as strings).
- student_id: a string of 7 to 9 ASCII digits, leading zeros kept; surrounding spaces are trimmed.
- email: trimmed, lower-cased, `local@domain` with a dotted domain and an alphabetic TLD, at most 254 characters.
- first_name / last_name: Unicode NFC, trimmed, inner whitespace collapsed to one space, at most 100
  characters, letters plus space, hyphen, apostrophe and full stop only. A name typed all in lower or all
  in upper case is title-cased (``o'NEIL`` stays as typed, ``mary-jane`` becomes ``Mary-Jane``); a mixed-case
  name is kept as typed, since ``McDonald`` or ``van der Berg`` cannot be re-derived by a rule. Title-casing
  never changes a letter's length or loses one (``ß``, ``ŉ``, ``ı`` stay as typed), so normalising twice
  equals normalising once (issue 16).
Unknown form fields are dropped; every problem is reported in one message.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

STUDENT_ID = re.compile(r"[0-9]{7,9}")
# Pragmatic address check, not RFC 5322: dot-atom local part, dotted host names, alphabetic TLD.
EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 100
NAME_PUNCTUATION = frozenset(" -'’.")
# A letter after one of these starts a new word part when title-casing ("Mary-Jane", "O'Neil").
WORD_BREAKS = frozenset(" -'’")
REQUIRED_FIELDS = ("student_id", "email", "first_name", "last_name")
# Greek small final sigma: a lower-cased capital sigma at the end of a word part takes this form.
FINAL_SIGMA = "ς"
CAPITAL_SHARP_S = "ẞ"


class InvalidAccountForm(Exception):
    """The submitted form cannot become an account; the message lists every problem, `; `-separated."""


def normalise_name(raw: str) -> str:
    """The name as the account keeps it; normalise_name(normalise_name(x)) == normalise_name(x) for every x."""
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if _typed_in_one_case(name):
        # Case mapping can leave a letter beside a combining mark that NFC composes: compose again, so a
        # second pass starts from the same text.
        name = unicodedata.normalize("NFC", _title_case(name))
    return name


def _typed_in_one_case(name: str) -> bool:
    """All letters that have a safe case partner are lower case, or all are upper case.

    Letters without one (``ß``, ``ŉ``, ``ı``) do not decide: ``STRAUß`` is an upper-case name.
    """
    cased = [char for char in name if _safe_lower(char) != char or _safe_title(char) != char]
    return bool(cased) and (all(char.islower() for char in cased) or all(char.isupper() for char in cased))


def _title_case(name: str) -> str:
    chars = []
    at_word_start = True
    for position, char in enumerate(name):
        if at_word_start:
            chars.append(_safe_title(char))
        else:
            lowered = _safe_lower(char)
            if lowered == "σ" and not _letter_follows(name, position):
                lowered = FINAL_SIGMA
            chars.append(lowered)
        at_word_start = char in WORD_BREAKS
    return "".join(chars)


def _safe_title(char: str) -> str:
    """The title-case letter, only where it is one letter and a case variant of `char` (same lower case).

    ``ß`` -> ``Ss``, ``ŉ`` -> ``ʼN`` and ``ﬁ`` -> ``Fi`` change the length; ``ı`` -> ``I`` and ``ſ`` -> ``S``
    cannot be undone (``I`` lower-cases to ``i``): those letters are kept as typed.
    """
    titled = char.title()
    return titled if len(titled) == 1 and titled.lower() == char.lower() else char


def _safe_lower(char: str) -> str:
    """The lower-case letter, only where it is one letter and a case variant of `char` (same upper case).

    ``İ`` (two code points in lower case) stays as typed; capital sharp s is the one exception kept on
    purpose: ``ẞ`` -> ``ß`` is its defined lower case, although ``ß`` upper-cases to ``SS``.
    """
    lowered = char.lower()
    if len(lowered) == 1 and (lowered.upper() == char.upper() or char == CAPITAL_SHARP_S):
        return lowered
    return char


def _letter_follows(name: str, position: int) -> bool:
    following = name[position + 1 : position + 2]
    return bool(following) and unicodedata.category(following)[0] in ("L", "M")


def _name_problem(field: str, name: str) -> str | None:
    if not name:
        return f"{field} is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"{field} is longer than {MAX_NAME_LENGTH} characters"
    if not any(char.isalpha() for char in name):
        return f"{field} has no letters"
    bad = sorted({char for char in name if not _allowed_name_char(char)})
    if bad:
        return f"{field} contains characters not allowed in a name: {' '.join(repr(char) for char in bad)}"
    return None


def _allowed_name_char(char: str) -> bool:
    # Combining marks (category M*) are kept so decomposed accents that NFC cannot compose stay valid.
    return char in NAME_PUNCTUATION or unicodedata.category(char)[0] in ("L", "M")


def validate_form(form: Any) -> dict[str, str]:
    """The normalised account for a form, or InvalidAccountForm naming every problem."""
    if not isinstance(form, dict):
        raise InvalidAccountForm("the form must be a JSON object with student_id, email, first_name and last_name")
    problems = []
    present = {}
    for field in REQUIRED_FIELDS:
        value = form.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{field} is required")
        elif not isinstance(value, str):
            problems.append(f"{field} must be a string")
        else:
            present[field] = value

    account = {}
    if "student_id" in present:
        account["student_id"] = present["student_id"].strip()
        if not STUDENT_ID.fullmatch(account["student_id"]):
            problems.append("student_id must be 7 to 9 digits")
    if "email" in present:
        account["email"] = present["email"].strip().lower()
        if len(account["email"]) > MAX_EMAIL_LENGTH or not EMAIL.fullmatch(account["email"]):
            problems.append("email is not a valid address")
    for field in ("first_name", "last_name"):
        if field in present:
            account[field] = normalise_name(present[field])
            problem = _name_problem(field, account[field])
            if problem:
                problems.append(problem)
    if problems:
        raise InvalidAccountForm("; ".join(problems))
    return account


def validate_request(request: Any) -> dict[str, str]:
    """The normalised account for an execution input {"identity": claims, "form": body}, or InvalidAccountForm."""
    if not isinstance(request, dict):
        raise InvalidAccountForm("the execution input must be a JSON object with identity and form")
    identity, form = request.get("identity"), request.get("form")
    problems = []
    if not isinstance(identity, dict):
        problems.append("no verified identity: accounts are created only through the signed-in API")
    elif identity.get("email_verified") != "true":
        problems.append("the signed-in student's e-mail address is not verified")
    if not isinstance(form, dict):
        problems.append("the form must be a JSON object with first_name and last_name")
    if problems:
        raise InvalidAccountForm("; ".join(problems))
    return validate_form({
        "student_id": identity.get("student_id"),
        "email": identity.get("email"),
        "first_name": form.get("first_name"),
        "last_name": form.get("last_name"),
    })


def handler(event: Any, context: Any) -> dict[str, str]:
    """Lambda entry: the execution input (verified identity and form) in, the normalised account out."""
    return validate_request(event)
