"""Exceptions and warnings of the estimator library, and the pieces of the one-sentence
errors gradvar raises for mistakes in a user's dist, cost or exact_value."""

import re

from estimators._runtime import tf


class NotApplicableError(ValueError):
    """An estimator cannot be used on this problem, with these options or these sizes."""


class BiasedEstimatorWarning(UserWarning):
    """The estimator is biased on this problem (e.g. naive_mc when p depends on θ)."""


TRACEABLE = ("dist and cost must be traceable TensorFlow code (no .numpy() or NumPy on "
             "tensors, no Python if on tensor values: use tf.where)")
DTYPE_WORDS = re.compile(r"dtype|\bdouble\b|\bfloat(16|32|64)?\b", re.IGNORECASE)
SHAPE_WORDS = re.compile(r"shape|broadcast|incompatible|dimension", re.IGNORECASE)


def speaks_for(error: Exception, problem_name: str) -> bool:
    """Whether ``error`` is a ValueError of ours that already names the problem: it passes
    unchanged instead of being wrapped again."""
    return isinstance(error, ValueError) and str(error).strip().startswith(
        f"problem '{problem_name}'")


def cause(error: Exception) -> str:
    """The line of an exception's message that says what went wrong: TensorFlow's "in user
    code:" stacks reduced to the line naming the exception, a trailing "name:" dropped."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("in user code:"):
        named = [line for line in lines if re.match(r"^\w+(Error|Exception)\b.*:", line)]
        lines = named[-1:] or lines[-1:]
    return re.sub(r"\s*name:\s*$", "", lines[0]).strip()[:300] if lines else ""


def tensorflow_check(error: Exception) -> bool:
    """Whether ``error`` comes from TensorFlow's own checks (op, type or value errors), whose
    messages name dtypes and shapes reliably, rather than from the user's own code."""
    return isinstance(error, (tf.errors.OpError, TypeError, ValueError))


def sentence(name: str, detail: str) -> str:
    """``Name: detail.`` (or ``Name.``), ending in one full stop."""
    text = f"{name}: {detail}" if detail else name
    return text if text.endswith((".", "!", "?")) else text + "."


def traced_failure(problem_name: str, what: str, error: Exception) -> ValueError:
    """One sentence for an exception raised while the user's dist or cost ran traced or
    compiled (they passed the eager check, so the trace is the likely cause). A ValueError
    of ours, already naming the problem, passes unchanged."""
    if speaks_for(error, problem_name):
        return type(error)(str(error).strip())
    detail = cause(error)
    return ValueError(f"problem '{problem_name}': {what} failed with {type(error).__name__}"
                      + (f" ({detail})" if detail else "") + f"; {TRACEABLE}.")
