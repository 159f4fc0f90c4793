"""Identification: decisions with a stated false-positive rate, ISO 11929 limits that mean what they say."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.inference.identify import IDENTIFICATION_COLUMNS, IdentificationConfig, identify
from bayes_unmix.models.gamma import GammaMixture


@pytest.fixture(scope="module")
def problem(toy_model, flat_background):
    mix = GammaMixture.from_spectral_model(toy_model, flat_background)
    templates = np.asarray(mix.templates(toy_model.signatures(jnp.asarray(toy_model.weights_at(10.0)))))
    return mix, templates  # components: background, Cs137, Ba133


def test_present_and_absent_nuclides_are_told_apart(problem):
    mix, templates = problem
    rng = np.random.default_rng(0)
    counts = rng.poisson(np.array([3000.0, 1500.0, 0.0]) @ templates).astype(float)
    result = identify(mix, counts)
    table = result.table()
    assert tuple(table.columns[:5]) == IDENTIFICATION_COLUMNS
    assert list(table["decision"]) == ["present", "absent"]
    assert table["probability_present"][0] > 0.999 and table["probability_present"][1] < 0.5
    assert abs(table["estimate"][0] - 1500.0) < 4 * table["standard_uncertainty"][0]
    assert np.all(table["decision_threshold"] > 0)
    assert np.all(table["detection_limit"] > 1.5 * table["decision_threshold"])
    assert np.all(table["upper_limit"] >= table["estimate"])
    assert result.unit == "counts"


def test_false_positive_rate_and_detection_limit_hold_over_replicates(problem):
    """alpha is the false-positive rate for an absent nuclide; at the detection limit the nuclide is
    found with probability about 1 - beta (ISO 11929's definitions), checked over 300 replicates."""
    mix, templates = problem
    rng = np.random.default_rng(1)
    config = IdentificationConfig(alpha=0.05, beta=0.05)
    absent = rng.poisson(np.array([3000.0, 1500.0, 0.0]) @ templates, size=(300, templates.shape[1]))
    first = identify(mix, absent.astype(float), config=config)
    fpr = first.present[:, 1].mean()
    assert fpr < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300), fpr  # 3-sigma binomial tolerance
    limit = np.median(first.detection_limit[:, 1])
    at_limit = rng.poisson(np.array([3000.0, 1500.0, limit]) @ templates, size=(300, templates.shape[1]))
    power = identify(mix, at_limit.astype(float), config=config).present[:, 1].mean()
    assert 0.95 - 0.08 < power, (limit, power)  # asymptotic limits; Poisson counts of a few hundred


def test_familywise_rule_is_stricter(problem):
    mix, _ = problem
    per = IdentificationConfig(alpha=0.01)
    family = dataclasses.replace(per, familywise=True)
    counts = np.full(mix.n_channels, 50.0)
    assert identify(mix, counts, config=family).critical_deviance > identify(mix, counts, config=per).critical_deviance


def test_bad_configuration_is_refused(problem):
    mix, _ = problem
    with pytest.raises(ValueError, match="alpha"):
        IdentificationConfig(alpha=1.5)
    with pytest.raises(ValueError, match="flat count prior"):
        identify(dataclasses.replace(mix, count_prior="sparse"), np.ones(mix.n_channels))
    with pytest.raises(ValueError, match="channels"):
        identify(mix, np.ones(mix.n_channels + 1))
