"""Reading /metrics as Prometheus does: the text format, parsed by prometheus_client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """Samples of one scrape: (sample name, labels) -> value."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        families = set()
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples, frozenset(families))

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
        wanted = set(labels.items())
        return sum(value for (sample, have), value in self.samples.items() if sample == name and wanted <= have)

    def labels(self, name: str, label: str) -> set[str]:
        """The values `label` takes among the samples named `name`."""
        return {dict(have)[label] for (sample, have) in self.samples if sample == name and label in dict(have)}


async def scrape(http: httpx.AsyncClient, admin_key: str) -> Scrape:
    response = await http.get("/metrics", headers={"authorization": f"Bearer {admin_key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape.parse(response.text)
