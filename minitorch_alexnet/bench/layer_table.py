"""``bench layers``, part 3: the report. The header (the reference product, the copy
bandwidth, PyTorch), every layer's times, the memory-bound layers' bytes and rates, the
convolutions against the targets, and each convolution's rounds.
"""
import statistics

from . import machine

CONV_RATE_TARGET = 0.60               # conv2..conv5 forward+backward vs the matrix product
UNFOLD_SHARE_TARGET = 0.25            # unfolding + folding back: share of each convolution's time


def _shape(shape):
    return "x".join(str(s) for s in shape[1:]) if len(shape) > 1 else "-"


def _cell(value, spec, width):
    """``value`` formatted with ``spec``, or '-' when there is none, right-aligned in ``width``."""
    return f"{'-' if value is None else format(value, spec):>{width}}"


def _header_lines(rates, memory, batch, repeat, rounds, torch_line, with_torch):
    gemm, start, end = statistics.median(rates), memory["copy_start"], memory["copy_end"]
    m, k, n = machine.GEMM_SHAPE
    return [f"float32 matrix product {m}x{k} @ {k}x{n}: "
            f"{gemm:.1f} GFLOP/s (median of {len(rates)}, range {min(rates):.1f}..{max(rates):.1f})",
            f"copy bandwidth (np.copyto, {machine.COPY_BYTES >> 20} MiB float32, one thread, 2 x bytes / time): "
            f"{statistics.median(start):.1f} GB/s at the start, {statistics.median(end):.1f} GB/s at the end "
            f"(medians of {len(start)} copies each; the memory-bound rows use {memory['copy_gbps']:.1f})",
            torch_line,
            f"batch {batch}, float32, medians over {rounds} round(s) of {repeat} run(s) each; GFLOP/s "
            f"counts forward + backward (= 3x the forward FLOPs); x GEMM = GFLOP/s over the "
            f"matrix-product rate (for a convolution, the rate measured just before and after it); "
            f"unfold = im2col/im2row + col2im/row2im share of the convolution's time; convN.bias = "
            f"the bias add and its gradient at convN's output, timed apart (already inside convN's "
            f"time, so not in the total)"
            + ("; ours/torch = our forward+backward time over PyTorch's (1.00 or less: ours is at "
               "least as fast)" if with_torch else ""), ""]


def _layer_lines(rows, gemm, batch, with_torch):
    """The main table: every layer's times and GFLOP/s and, with PyTorch, its times beside ours."""
    torch_head = f" {'torch fwd':>10} {'torch bwd':>10} {'ours/torch':>10}" if with_torch else ""
    lines = [f"{'layer':<13} {'input':>12} {'output':>12} {'fwd ms':>9} {'bwd ms':>9} "
             f"{'GFLOP/s':>8} {'x GEMM':>7} {'unfold':>7}" + torch_head]
    totals = dict(fwd=0.0, bwd=0.0, torch_fwd=0.0, torch_bwd=0.0)
    for row in rows:
        gflops, share = row.get("gflops"), row.get("unfold_share")
        if row["kind"] != "bias":             # the bias rows are inside their convolution's time
            totals["fwd"] += row["forward_ms"]
            totals["bwd"] += row["backward_ms"] or 0.0
            totals["torch_fwd"] += row.get("torch_forward_ms", 0.0)
            totals["torch_bwd"] += row.get("torch_backward_ms", 0.0)
        line = (f"{row['name']:<13} {_shape(row['shape']):>12} {_shape(row['out_shape']):>12} "
                f"{row['forward_ms']:>9.2f} {_cell(row['backward_ms'], '.2f', 9)} {_cell(gflops, '.1f', 8)} "
                f"{_cell(None if gflops is None else gflops / row.get('gemm_gflops', gemm), '.2f', 7)} "
                f"{'-' if share is None else format(100 * share, '.1f') + '%':>7}")
        if with_torch:
            line += (f" {row['torch_forward_ms']:>10.2f} {row['torch_backward_ms']:>10.2f} "
                     f"{row['torch_ratio']:>10.3g}")
        lines.append(line)
    ours = totals["fwd"] + totals["bwd"]
    line = (f"{'total':<13} {'':>12} {'':>12} {totals['fwd']:>9.1f} {totals['bwd']:>9.1f}   "
            f"=> {1e3 * batch / ours:.1f} images/s (layers alone)")
    if with_torch:
        theirs = totals["torch_fwd"] + totals["torch_bwd"]
        line += (f"; PyTorch {totals['torch_fwd']:.1f} + {totals['torch_bwd']:.1f} ms "
                 f"=> {1e3 * batch / theirs:.1f} images/s, ours/torch {ours / theirs:.2f}")
    return lines + [line]


def _memory_lines(rows, copy_gbps):
    """The memory-bound layers: the fewest bytes they must move and how fast they move them."""
    lines = ["", f"memory-bound layers: MB = the fewest bytes each pass must move (10^6 bytes; see "
             f"minimum_bytes: ReLU forward reads x and writes y, ...), GB/s = those bytes over the "
             f"pass's median time, x copy = both passes' bytes over both passes' time, over the copy "
             f"bandwidth ({copy_gbps:.1f} GB/s): 1.00 moves the bytes as fast as a plain copy; above 1 "
             f"only when the arrays fit in a cache",
             f"{'layer':<13} {'output':>12} {'fwd ms':>9} {'bwd ms':>9} {'fwd MB':>9} {'bwd MB':>9} "
             f"{'fwd GB/s':>9} {'bwd GB/s':>9} {'x copy':>7}"]
    for row in rows:
        if "gbps" not in row:
            continue
        lines.append(f"{row['name']:<13} {_shape(row['out_shape']):>12} {row['forward_ms']:>9.2f} "
                     f"{_cell(row['backward_ms'], '.2f', 9)} {row['forward_bytes'] / 1e6:>9.3g} "
                     f"{row['backward_bytes'] / 1e6:>9.3g} {row['forward_gbps']:>9.3g} "
                     f"{_cell(row['backward_gbps'], '.3g', 9)} {row['copy_ratio']:>7.3g}")
    return lines


def _target_lines(rows, preset):
    """Each convolution's rate and unfolding share against the targets, with its round range."""
    lines = ["", f"targets: conv2..conv5 forward+backward >= {CONV_RATE_TARGET:.0%} of the matrix-product "
             f"rate; unfolding (im2col/im2row + col2im/row2im) < {UNFOLD_SHARE_TARGET:.0%} of each "
             f"convolution's time. Judged on the medians; 'rounds' gives the lowest and highest "
             f"round's figure." + ("" if preset == "paper" else " (The targets were set for the "
                                    "paper's shapes.)"),
             f"{'conv':<6} {'GFLOP/s':>8} {'GEMM nearby':>12} {'x GEMM':>7} {'rounds':>11} {'rate target':>12} "
             f"{'unfold':>7} {'rounds':>13} {'unfold target':>14}"]
    for row in rows:
        if row["kind"] != "conv":
            continue
        ratio = row["gflops"] / row["gemm_gflops"]
        rate_ok = "-" if row["name"] == "conv1" else ("met" if ratio >= CONV_RATE_TARGET else "NOT met")
        unfold_ok = "met" if row["unfold_share"] < UNFOLD_SHARE_TARGET else "NOT met"
        ratios, shares = row["round_ratios"], row["round_shares"]
        ratio_range = f"{min(ratios):.2f}-{max(ratios):.2f}"
        share_range = f"{100 * min(shares):.1f}-{100 * max(shares):.1f}%"
        lines.append(f"{row['name']:<6} {row['gflops']:>8.1f} {row['gemm_gflops']:>12.1f} {ratio:>7.2f} "
                     f"{ratio_range:>11} {rate_ok:>12} {100 * row['unfold_share']:>6.1f}% "
                     f"{share_range:>13} {unfold_ok:>14}")
    return lines


def _round_lines(rows):
    """Each convolution's rounds: x GEMM, unfolding share and the cross-core probe after it."""
    lines = ["", "each round: x GEMM / unfold share / cross-core write ratio (time to write "
             f"{machine.PROBE_BYTES >> 20} MB just read by the other core over the time after this core read "
             f"it; above {machine.CORES_APART:g} the two cores do not share a cache and the memory-bound "
             "steps slow down; '-' when it cannot be measured)"]
    for row in rows:
        if row["kind"] != "conv":
            continue
        cells = [f"{ratio:.2f} / {100 * share:4.1f}% / " + ("-" if probe is None else f"{probe:.1f}")
                 for ratio, share, probe in zip(row["round_ratios"], row["round_shares"], row["round_probes"])]
        lines.append(f"{row['name']:<6} " + "   ".join(cells))
    return lines


def torch_description(torch, skipped=False):
    """The header's line about PyTorch: its version and thread count, or why it is not measured."""
    if torch is None:
        return ("PyTorch: not measured (" + ("--no-torch" if skipped else "not importable here") + "); "
                "the table has no PyTorch columns")
    return (f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads (torch.get_num_threads(), "
            f"left as they are), timed on the same arrays right after ours in every round")


def format_layer_table(rows, rates, batch, repeat, rounds, memory, torch_line, preset="paper"):
    """The whole report of ``bench layers``: the header, every layer, the memory-bound layers,
    the convolutions' targets and their rounds."""
    with_torch = all("torch_ratio" in row for row in rows)
    lines = _header_lines(rates, memory, batch, repeat, rounds, torch_line, with_torch)
    lines += _layer_lines(rows, statistics.median(rates), batch, with_torch)
    lines += _memory_lines(rows, memory["copy_gbps"])
    lines += _target_lines(rows, preset) + _round_lines(rows)
    return "\n".join(lines)

