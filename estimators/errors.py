"""Exceptions and warnings of the estimator library."""

import re


class NotApplicableError(ValueError):
    """An estimator cannot be used on this problem, with these options or these sizes."""


class BiasedEstimatorWarning(UserWarning):
    """The estimator is biased on this problem (e.g. naive_mc when p depends on θ)."""


TRACEABLE = ("dist and cost must be traceable TensorFlow code (no .numpy() or NumPy on "
             "tensors, no Python if on tensor values: use tf.where)")


def traced_failure(problem_name: str, what: str, error: Exception) -> ValueError:
    """One sentence for an exception raised while the user's dist or cost ran traced or
    compiled (they passed the eager check, so the trace is the likely cause). A ValueError
    of ours, already naming the problem, passes unchanged."""
    text = str(error).strip()
    if isinstance(error, ValueError) and text.startswith(f"problem '{problem_name}'"):
        return type(error)(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("in user code:"):
        # A stack of the user's code; the cause is the line naming the exception.
        causes = [line for line in lines if re.match(r"^\w+(Error|Exception)\b.*:", line)]
        lines = causes[-1:] or lines[-1:]
    detail = lines[0][:300] if lines else ""
    return ValueError(f"problem '{problem_name}': {what} failed with {type(error).__name__}"
                      + (f" ({detail})" if detail else "") + f"; {TRACEABLE}.")
