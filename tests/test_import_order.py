"""Import order: ArviZ imported before bayes_unmix must not break NumPyro models (fresh interpreters)."""

import subprocess
import sys

SCRIPT = """
import arviz  # registers a lazy stand-in for numpyro
import bayes_unmix
import numpyro.distributions as dist  # the first real import of numpyro: a subpackage
from numpyro import handlers, factor, sample

def model():
    sample("x", dist.Normal(0.0, 1.0))
    factor("penalty", -1.0)

trace = handlers.trace(handlers.substitute(model, data={"x": 0.0})).get_trace()
print(float(sum(site["fn"].log_prob(site["value"]).sum() for site in trace.values())))
"""


def test_arviz_before_bayes_unmix_keeps_numpyro_whole():
    out = subprocess.run([sys.executable, "-c", SCRIPT], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert abs(float(out.stdout.split()[-1]) - (-0.9189385332046727 - 1.0)) < 1e-12
