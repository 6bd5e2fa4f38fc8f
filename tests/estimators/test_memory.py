"""The memory pre-flight: the model bounds a measured peak, and a call that cannot fit is
refused in one sentence before anything is allocated."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import estimators as E

PEAK = textwrap.dedent("""
    import json, sys
    import estimators as E

    def status(field):  # kB -> bytes
        with open("/proc/self/status") as lines:
            return next(int(l.split()[1]) * 1024 for l in lines if l.startswith(field))

    name, R = sys.argv[1], int(sys.argv[2])
    problem = E.problems.get("gaussian_cos")
    E.estimate(name, problem, [0.5, 1.0], 10, 10)  # TensorFlow, XLA and caches first
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset the peak (VmHWM) to the current resident size
    except OSError:
        print("null")  # a sandbox that forbids it: nothing can be measured
        sys.exit(0)
    before = status("VmRSS:")
    E.estimate(name, problem, [0.5, 1.0], 10, R)
    print(json.dumps(status("VmHWM:") - before))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                    reason="measures peak memory through Linux's /proc (VmHWM reset)")
@pytest.mark.parametrize("name", ["score_function_batch_optimal", "measure_valued"])
def test_the_model_bounds_a_measured_peak(name):
    # The two estimators with the largest measured peak per value (4.8x and 3.6x of one
    # float32 per value); the peak resident memory is reset just before the call.
    replicates = 1_000_000
    result = subprocess.run([sys.executable, "-c", PEAK, name, str(replicates)],
                            capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured is None:
        pytest.skip("this system does not let a process reset its peak memory (clear_refs)")
    modelled = E.memory.required_bytes(replicates, 10, event_size=1, dim=2)
    assert 0 < measured <= modelled
    assert measured > modelled / 10, "the model is so loose that it refuses calls that fit"


def test_a_call_that_cannot_fit_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"^score_function on problem 'gaussian_cos\(k=1\)' "
                                         r"needs about .* GB of memory .* lower n_replicates "
                                         r"\(about [\d,]+ fit\) or batch_size\.$"):
        E.estimate("score_function", E.problems.get("gaussian_cos"), [0.5, 1.0], 10,
                   10**9)


def test_check_compares_with_the_available_memory():
    needed = E.memory.required_bytes(1000, 10, 1, 2)
    E.memory.check("x", 1000, 10, 1, 2, available=int(needed / E.memory.SHARE) + 1)
    with pytest.raises(ValueError, match="more than the"):
        E.memory.check("x", 1000, 10, 1, 2, available=needed)


def _delta_values(replicates, event_size):
    return E.get_estimator("score_function", control_variate="delta").memory_values(
        replicates, event_size)


def test_the_delta_method_adds_its_hessian_chunks():
    # The Hessian's diagonal is computed in chunks: linear in D, never an [R, D, D] tensor.
    cv = E.control_variates
    extra = [E.memory.required_bytes(10, 10, D, 2 * D, extra_values=_delta_values(10, D))
             - E.memory.required_bytes(10, 10, D, 2 * D) for D in (100, 10**6)]
    assert extra[0] == 4 * cv.DELTA_TEMPORARIES * cv.HESSIAN_CHUNK_ELEMENTS
    assert extra[1] == 4 * cv.DELTA_TEMPORARIES * 10 * 10**6
    assert E.get_estimator("score_function").memory_values(10, 10**6) == 0


def test_the_model_is_linear_in_the_dimension():
    for delta in (False, True):  # R · D past the Hessian's chunk: linear, not affine-capped
        sizes = [E.memory.required_bytes(50, 10, D, 2 * D,
                                         _delta_values(50, D) if delta else 0.0)
                 for D in (10**5, 2 * 10**5, 3 * 10**5)]
        assert sizes[2] - sizes[1] == pytest.approx(sizes[1] - sizes[0], abs=4)


def test_estimators_with_more_temporaries_are_modelled_larger():
    problem = E.problems.get("gaussian_cos")
    plain = E.memory.required_bytes(10**6, 10, 1, 2)
    room = int(plain / E.memory.SHARE) + 1  # score_function fits, measure_valued does not
    E.memory.check_call(E.get_estimator("score_function"), problem, [0.5, 1.0], 10**6, 10,
                        available=room)
    with pytest.raises(ValueError, match="more than the"):
        E.memory.check_call(E.get_estimator("measure_valued"), problem, [0.5, 1.0], 10**6,
                            10, available=room)
