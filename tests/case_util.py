"""One tiny case file for the end-to-end tests of several rooms: ``tiny_case_toml`` fills
the template with the sweep tests' defaults (width 8, n = 4, T = 3, d = 2, 20 iterations,
no data-specific constants) or with the values a test names."""

from __future__ import annotations

TEMPLATE = """\
name = "tiny"
[model]
activation = "{activation}"
width = {width}
[init]
seed = 1
alpha0 = "0.5"
[ball]
rho_w = "1.0"
rho_u = "2.0"
[data]
kind = "sphere"
n = {n}
steps = 3
dim = {dim}
seed = 2
[target]
kind = "transport"
nu_w = "0.5"
nu_u = "1.0"
mc_draws = {mc_draws}
seed = 3
[train]
algorithm = "pgd"
eta = "0.08"
iterations = {iterations}
[certify]
data_specific = {data_specific}
{certify_extra}"""

DEFAULTS = {"activation": "tanh", "width": 8, "n": 4, "dim": 2, "mc_draws": 1000,
            "iterations": 20, "data_specific": False, "certify_extra": ""}


def tiny_case_toml(**values) -> str:
    """The tiny case with ``values`` (keys of :data:`DEFAULTS`) in place of the defaults."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown tiny-case fields: {sorted(unknown)}")
    v = DEFAULTS | values
    v["data_specific"] = str(bool(v["data_specific"])).lower()
    return TEMPLATE.format(**v)
