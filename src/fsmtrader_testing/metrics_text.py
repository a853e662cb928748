"""The Prometheus text a bot serves, read back with prometheus_client's own parser, for the
tests that compare metrics with the audit trail."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(body: bytes | str) -> Samples:
    """{sample name: {sorted labels: value}}."""
    out: Samples = {}
    text = body.decode() if isinstance(body, bytes) else body
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` keyed by the values of ``labels``, summed over the labels
    not named (as PromQL's ``sum by``: a family split by mode still adds up), zeros
    dropped."""
    out: dict[tuple[str, ...], float] = {}
    for k, v in samples.get(name, {}).items():
        key = tuple(dict(k)[label] for label in labels)
        out[key] = out.get(key, 0.0) + v
    return {k: v for k, v in out.items() if v}
