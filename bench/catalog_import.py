"""Catalog import benchmark: a 10,000-SKU catalog file into PostgreSQL with `quanyi import-catalog`.

    python bench/catalog_import.py [--products 1000] [--skus-per-product 10] [--kind postgresql]

Creates its own database (migrated, demo data), writes a JSON Lines file of one channel,
supplier, brand and category, the products, their SKUs (half card codes, half top-ups with
a supplier) and a listing per product, then times three runs of the command in turn: the
first (everything created), the same file again (everything unchanged), and a file with
every price changed (every SKU updated). Each figure is the command's wall time, process
start included, and the import's own time as it reports it. Prints the table and writes
the "Catalog import" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from servers import ROOT, project_env

sys.path.insert(1, str(ROOT))

import tables
from catalog_doc import machine, write_section
from database import _quanyi, bench_database

HEADING = "Catalog import"


def write_catalog(path: Path, products: int, per_product: int, *, price_step: int = 0) -> int:
    """The file; how many SKUs it holds."""
    with path.open("wb") as out:
        def line(record: dict[str, object]) -> None:
            out.write(orjson.dumps(record) + b"\n")

        line({"type": "channel", "code": "bulk", "name": "Bulk", "kind": "OWN_SITE", "currency": "CNY", "public": True})
        line({"type": "supplier", "code": "bulk-supplier", "name": "Bulk supplier"})
        line({"type": "brand", "code": "bulk-brand", "name": "Bulk brand"})
        line({"type": "category", "code": "bulk-category", "name": "Bulk category"})
        for p in range(products):
            line({"type": "product", "slug": f"bulk-{p:05d}", "name": f"Bulk product {p}", "brand": "bulk-brand",
                  "category": "bulk-category", "description": "A product of the import benchmark"})
        for p in range(products):
            for k in range(per_product):
                top_up = k % 2 == 1
                sku: dict[str, object] = {
                    "type": "sku", "code": f"BULK-{p:05d}-{k}", "product": f"bulk-{p:05d}", "name": f"SKU {p}/{k}",
                    "kind": "DIRECT_RECHARGE" if top_up else "CARD_CODE", "basePrice": f"{10 + k + price_step}.00",
                    "faceValue": f"{10 + k}.00", "supplierCost": "9.00",
                }
                if top_up:
                    sku["suppliers"] = [{"supplier": "bulk-supplier", "productCode": f"P{p}-{k}", "cost": "8.50"}]
                line(sku)
        for p in range(products):
            line({"type": "listing", "channel": "bulk", "product": f"bulk-{p:05d}", "position": p + 1})
    return products * per_product


def run(env: dict[str, str], folder: Path, path: Path) -> tuple[float, float]:
    """Wall seconds of the command, and the import's own seconds as it reports them."""
    started = time.monotonic()
    done = subprocess.run([*_quanyi(), "import-catalog", str(path)], env=project_env(env), cwd=folder,
                          capture_output=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"import-catalog failed:\n{done.stdout.decode()}\n{done.stderr.decode()}")
    reported = next(line for line in done.stdout.decode().splitlines() if line.startswith("time:"))
    return wall, float(reported.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--skus-per-product", type=int, default=10)
    parser.add_argument("--kind", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first, changed = folder / "catalog.jsonl", folder / "repriced.jsonl"
        skus = write_catalog(first, args.products, args.skus_per_product)
        write_catalog(changed, args.products, args.skus_per_product, price_step=1)
        with bench_database(args.kind, folder, catalog=False) as env:
            figures = [
                ("first import: everything created", *run(env, folder, first)),
                ("the same file again: everything unchanged", *run(env, folder, first)),
                ("every price changed: every SKU updated", *run(env, folder, changed)),
            ]
    records = 4 + args.products * 2 + skus
    header = ("run", "wall (process start included)", "import, as reported", "records/s")
    rows = [(name, f"{wall:.1f} s", f"{own:.1f} s", f"{records / own:,.0f}") for name, wall, own in figures]
    print(tables.text_table(header, rows))
    section = (
        f"## {HEADING}\n\n`python bench/catalog_import.py` ({args.kind}): a file of {skus:,} SKUs of "
        f"{args.products:,} products ({records:,} records) through `quanyi import-catalog`, one transaction "
        f"of batched statements each run. Measured on {machine(load_before)}.\n\n"
        + tables.markdown_table(header, rows) + "\n"
    )
    write_section(ROOT / "docs" / "benchmarks.md", HEADING, section)


if __name__ == "__main__":
    main()
