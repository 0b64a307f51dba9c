"""The report's numbers: units, zramctl's sizes, and cards that lead with net savings, checked
against hand-computed values and against the page set's own bytes."""
import numpy as np

from engine.pages import PAGE_SIZE, default_pages_path
from reports.numbers import card, cards_html, human, pct, ratio, results_html, zramctl_rows, zramctl_size


def test_units_by_hand():
    assert human(0) == "0 B" and human(1023) == "1,023 B" and human(1024) == "1.0 KiB"
    assert human(-40669) == "−39.7 KiB" and human(40669, signed=True) == "+39.7 KiB"
    assert human(3 * 1024 ** 3) == "3.0 GiB" and human(None) == "n/a"
    # zramctl prints 2211840 bytes as 2.1M, 786906 as 768.5K, 4096 as 4K, 512 as 512B
    assert zramctl_size(2211840) == "2.1M" and zramctl_size(786906) == "768.5K"
    assert zramctl_size(4096) == "4K" and zramctl_size(512) == "512B"
    assert pct(-40669, 3121152) == "−1.30 %" and pct(0, 10) == "0 %" and pct(5, 0) == "n/a"
    assert ratio(3121152, 786906) == "3.97" and ratio(1, 0) == "n/a"


def _result(net, gross, meta, merged, mm=None):
    r = {"net_saved_bytes": net, "saved_bytes": gross, "metadata_bytes": meta, "pages_merged": merged,
         "verified_readback": True, "comp_algorithm": "lzo-rle",
         "work": {"pages_hashed": 3, "bytes_hashed": 12288, "compares": 1, "bytes_compared": 4096,
                  "compressions": 3, "decompressions": 0}}
    if mm:
        r["mm_stat"] = mm
    return r


def test_card_leads_with_net_and_its_shares():
    mm = {"orig_data_size": 40960, "compr_data_size": 10240, "mem_used_total": 16384, "mem_limit": 0,
          "mem_used_max": 16384, "same_pages": 2, "pages_compacted": 0}
    c = card("zram_dedup", _result(-2048, 1024, 3072, 1, mm), 10 * PAGE_SIZE, 32768)
    assert c["net"] == "−2.0 KiB" and c["net_negative"]
    assert c["net_of_input"] == "−5.00 %"            # -2048 / 40960
    assert c["net_of_pool"] == "−6.25 %"             # -2048 / 32768
    assert c["ratio"] == "4.00" and c["pool_change"] == "−16.0 KiB" and c["same_bytes"] == "8.0 KiB"
    html = cards_html({"upstream_zram": _result(0, 0, 0, 0, dict(mm, mem_used_total=32768)),
                       "zram_dedup": _result(-2048, 1024, 3072, 1, mm)}, 10 * PAGE_SIZE)
    assert html.index("net −2.0 KiB") < html.index("gross 1.0 KiB")
    assert "2 same-filled pages not stored" in html


def test_results_and_zramctl_tables_have_units_not_dumps():
    mm = {"orig_data_size": 3121152, "compr_data_size": 786906, "mem_used_total": 2211840, "mem_limit": 0,
          "mem_used_max": 2211840, "same_pages": 15, "pages_compacted": 0}
    res = {"upstream_zram": _result(0, 0, 0, 0, mm)}
    t = results_html(res)
    assert "True" not in t and "NaN" not in t and "2.1 MiB" in t and "12.0 KiB" in t
    assert zramctl_rows(res) == [{"NAME": "upstream_zram", "ALGORITHM": "lzo-rle", "DATA": "3M", "COMPR": "768.5K",
                                  "TOTAL": "2.1M", "MEM-LIMIT": "0B", "MEM-USED": "2.1M", "ZERO/SAME": "15",
                                  "MIGRATED": "0", "COMP-RATIO": "3.97"}]


def test_upstream_card_counts_the_same_filled_pages_of_the_input():
    """upstream zram's card names the pages it did not store: the page set's same-filled pages
    (every 8-byte word equal), counted here from the bytes themselves."""
    from engine.mechanisms import Workload, make
    from reports.build import default_inputs
    inp = default_inputs()
    arr = np.frombuffer(open(default_pages_path(), "rb").read(), dtype=np.uint64).reshape(-1, PAGE_SIZE // 8)
    same = int((arr == arr[:, :1]).all(axis=1).sum())
    assert same > 0
    m = make("upstream_zram")
    m.run(Workload(inp.pages, inp.manifest, 1.0, "lru", 0, False, name="t"))
    html = cards_html({"upstream_zram": m.result()}, len(inp.pages) * PAGE_SIZE)
    assert f"{same:,} same-filled pages not stored" in html
    assert "net 0 B" in html
