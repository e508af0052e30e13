"""`defectlab` command line: headless train / evaluate / predict / demo, calling the same core workflows as
the GUI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import core
from core.cli.bench import add_bench_parser
from core.cli.progressbar import run_to_end
from core.cli.weights import add_weights_parser
from core.scoring.scorers import scorer_names
from core.cli.tables import metrics_table, per_type_table, render_table, threshold_table
from core.data.index import resolve_data_root
from core.errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXPECTED_ERRORS, UserError, user_message
from core.fileio import check_output_file, check_output_folder, write_text_atomic
from core.models.registry import PRESETS, get_method, list_methods
from core.paths import last_model
from core.progress import Cancelled, CancelToken
from core.regions import DEFAULT_MIN_AREA
from core.training.engine import TrainOptions
from core.workflow import (EvaluateRequest, PredictRequest, TrainRequest, evaluate_model, predict_folder,
                           train_model)

EXAMPLES = """examples:
  defectlab gui [FOLDER | MODEL | PROJECT]         open the workbench (plain `defectlab` does too)
  defectlab demo                                   train + evaluate on the bundled demo (headless)
  defectlab train --data ../shared/data/magnetic_tile --method ae-ssim --preset fast
  defectlab evaluate                               evaluate the most recently trained model
  defectlab predict --model M.safetensors --input new_lot/ --out results/
  defectlab predict --model M.safetensors --input new_lot/ --report report/   HTML + PDF defect report
  defectlab export --model M.safetensors --out M.onnx   ONNX with thresholds inside; predict --model M.onnx
"""


def resolve_data(value: str) -> Path:
    """A folder, a dataset name under $DEFECTLAB_DATA, or `demo[:category]` for the bundled demo."""
    if value == "demo" or value.startswith("demo:"):
        from core.data.demo import DEFAULT_CATEGORY, demo_dataset  # noqa: PLC0415 - generated only when asked for
        return demo_dataset(value.partition(":")[2] or DEFAULT_CATEGORY)
    return resolve_data_root(value)


def _cancel_on_ctrl_c(cancel: CancelToken) -> None:
    """First Ctrl-C cancels cooperatively (the checkpoint is kept); a second one aborts at once."""
    def handler(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\ncancelling after the current step (Ctrl-C again to abort)...", file=sys.stderr)
        cancel.cancel()
    signal.signal(signal.SIGINT, handler)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {"epochs": "epochs", "input_size": "input_size", "batch_size": "batch_size", "lr": "lr",
             "resize_mode": "resize_mode", "tile_scale": "tile_scale"}
    values = {key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr) is not None}
    if args.no_augment:
        values["augment"] = False
    if getattr(args, "scorer", None):
        values["scorers"] = tuple(args.scorer)
    for item in args.set or []:
        name, value = _setting(item)
        values[name] = value
    return values


def _setting(item: str) -> tuple[str, Any]:
    """`NAME=VALUE` from --set: numbers, true/false and null as JSON, anything else as text. The method's
    config checks the name (core.models.registry)."""
    name, sep, text = item.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--set expects NAME=VALUE (e.g. downsamplings=3), got {item!r}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    return name.strip(), value


def cmd_train(args: argparse.Namespace) -> int:
    data = resolve_data(args.data)
    cancel = CancelToken()
    _cancel_on_ctrl_c(cancel)
    request = TrainRequest(data=data, method=args.method, preset=args.preset, overrides=_overrides(args),
                           out=Path(args.out) if args.out else None, val_fraction=args.val_fraction,
                           target_false_reject_rate=args.target_frr, fresh=args.fresh,
                           options=TrainOptions(seed=args.seed, device=args.device, threads=args.threads,
                                                checkpoint_every=args.checkpoint_every))
    print(f"training {args.method} ({args.preset} preset) on {data}", file=sys.stderr)
    last = run_to_end(train_model(request, cancel))
    if last.phase == "cancelled":
        print(last.message, file=sys.stderr)
        return 130
    print(f"model written to {last.result}")
    return 0


def _default_model(value: str | None) -> Path:
    if value:
        return Path(value)
    found = last_model()
    if found is None:
        raise ValueError("no trained model found; train one first (defectlab train ...) or pass --model")
    return found


def print_report(report: dict[str, Any]) -> None:
    counts = report["counts"]
    print(f"\n{report['method']} ({report['preset']}) on {report['data']}: "
          f"{counts['good']} good + {counts['defective']} defective test images, "
          f"{report['ms_per_image']:.1f} ms/image (incl. reading)")
    print(metrics_table(report))
    print("* = the model's default map. P/R/F1 use the label-free image threshold stored in the model; FRR = "
          "share of good parts it rejects.\n")
    print(threshold_table(report))
    print("FRR of a pixel threshold: good parts with any pixel at or above it. A degenerate calibration is no "
          "better than flagging every part and is not offered as a threshold.\n")
    print(per_type_table(report))
    truth = report.get("pixel_ground_truth", {})
    if truth.get("defect_images"):
        print(f"\n{truth['summary']}")
    if report["skipped"]:
        print(f"\n{len(report['skipped'])} files skipped, e.g. {report['skipped'][0]['path']}: "
              f"{report['skipped'][0]['reason']}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _default_model(args.model)
    data = resolve_data(args.data) if args.data else None
    if args.json:
        check_output_file(args.json, "--json", inputs=[model] + ([data] if data else []))
    print(f"evaluating {model}", file=sys.stderr)
    report = run_to_end(evaluate_model(EvaluateRequest(model, data, args.device))).result
    print_report(report)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
        print(f"metrics written to {args.json}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if not (args.out or args.report):
        raise UserError("give --out DIR (scores.csv, overlays) and/or --report DIR (HTML/PDF/CSV/JSON report)")
    if args.min_area < 0:
        raise UserError(f"--min-area = {args.min_area} must be 0 or more")
    cancel = CancelToken()
    _cancel_on_ctrl_c(cancel)
    report = Path(args.report) if args.report else None
    out = Path(args.out) if args.out else report  # --report alone: scores.csv and overlays go beside the report
    request = PredictRequest(_default_model(args.model), Path(args.input), out, write_maps=not args.no_maps,
                             device=args.device, report=report, min_region_area=args.min_area)
    last = run_to_end(predict_folder(request, cancel))
    defective = sum(r.verdict == "defective" for r in last.result)
    print(f"{len(last.result)} images scored, {defective} defective; scores in {out / 'scores.csv'}"
          + ("" if args.no_maps else f", overlays in {out / 'maps'}"))
    if "report" in last.extra:
        files = last.extra["report"]
        print(f"report: {files.html}" + (f" and {files.pdf}" if files.pdf else "")
              + (" (PARTIAL: cancelled)" if last.phase == "cancelled" else ""))
    return 130 if last.phase == "cancelled" else 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.export.metadata import describe, read_props  # noqa: PLC0415 - loads onnx only when asked for
    from core.export.onnx_export import export_onnx  # noqa: PLC0415

    if args.inspect:
        print(render_table(["key", "value"], [list(row) for row in describe(read_props(args.inspect))]))
        return 0
    if not args.out:
        raise UserError("give --out FILE.onnx (or --inspect FILE.onnx to read an exported file)")
    model = _default_model(args.model)
    maps = [m.strip() for m in args.maps.split(",") if m.strip()] if args.maps else None
    print(f"exporting {model} to {args.format}", file=sys.stderr)
    result = export_onnx(model, args.out, maps, args.all_maps)
    print(f"{result.method} exported to {result.path}: input images (N,C,S,S) in [0,1]; outputs "
          f"{', '.join(result.outputs)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job, headless: demo data -> train -> evaluate -> overlays of the test set."""
    out = check_output_folder(args.out, "--out")
    data = resolve_data(f"demo:{args.category}")
    model_path = out / f"demo-{args.category}_{args.method}.safetensors"
    request = TrainRequest(data=data, method=args.method, preset="fast", out=model_path,
                           overrides={"epochs": args.epochs}, options=TrainOptions(seed=0))
    print(f"demo dataset: {data}\ntraining {args.method} (fast preset, {args.epochs} epochs)", file=sys.stderr)
    run_to_end(train_model(request))
    report = run_to_end(evaluate_model(EvaluateRequest(model_path, data))).result
    print_report(report)
    write_text_atomic(out / "metrics.json", json.dumps(report, indent=1))
    run_to_end(predict_folder(PredictRequest(model_path, data / "test", out / "test_predictions")))
    print(f"\nmodel: {model_path}\nmetrics: {out / 'metrics.json'}\noverlays and scores.csv: "
          f"{out / 'test_predictions'}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from core.workflow.audit import audit_csv, audit_training_set  # noqa: PLC0415

    model = _default_model(args.model)
    data = resolve_data(args.data) if args.data else None
    if args.top < 0:
        raise UserError(f"--top = {args.top} must be 0 or more")
    if args.csv:
        check_output_file(args.csv, "--csv", inputs=[model] + ([data] if data else []))
    last = run_to_end(audit_training_set(model, data, args.device))
    entries = last.result
    print(last.message)
    rows = [[str(i + 1), f"{e.score:.4g}", "SUSPECT" if e.suspect else "", str(e.path)]
            for i, e in enumerate(entries[:args.top])]
    print(render_table(["rank", "score", "flag", "file"], rows) if rows else "no training images")
    if args.csv:
        write_text_atomic(args.csv, audit_csv(entries))
        print(f"full ranking written to {args.csv}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    if args.method:  # one method's settings with their fast and paper values (for train --set)
        fast, paper = get_method(args.method).config("fast"), get_method(args.method).config("paper")
        rows = [[f.name, str(getattr(fast, f.name)), str(getattr(paper, f.name))] for f in dataclasses.fields(fast)]
        print(render_table(["setting", "fast", "paper"], rows))
        return 0
    for spec in list_methods():
        print(f"{spec.name:12} {spec.summary}")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    """Only reached when the `defectlab` launcher did not open the workbench itself (e.g. `python -m core`)."""
    print("the workbench opens through the `defectlab` command: defectlab gui "
          f"{args.target or ''}".rstrip(), file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defectlab", description="Labeling-free visual inspection: train "
                                     "unsupervised defect detectors on folders of images.", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=core.VERSION_TEXT)
    sub = parser.add_subparsers(dest="command", required=True)
    methods = [m.name for m in list_methods()]

    def add(name: str, fn: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=fn)
        return p

    g = add("gui", cmd_gui, "Open the workbench (the default when there is a display), optionally on a folder, "
            "a model file or a project.")
    g.add_argument("target", nargs="?", help="folder of images, model file (.safetensors) or project file")
    t = add("train", cmd_train, "Train a model on a folder (MVTec layout or plain) and write a model file. "
            "Re-running the same command after an interruption resumes from its checkpoint.")
    t.add_argument("--data", required=True, help="dataset folder, a dataset name under $DEFECTLAB_DATA "
                   "(e.g. magnetic_tile), or demo[:fabric|metal|tiles]")
    t.add_argument("--method", default="ae-ssim", choices=methods, help="method (default: ae-ssim)")
    t.add_argument("--preset", default="fast", choices=PRESETS, help="fast: sized for a CPU; paper: the "
                   "paper's settings (default: fast)")
    t.add_argument("--out", help="model file to write (default: per-user models folder)")
    t.add_argument("--epochs", type=int, help="override the preset's epochs")
    t.add_argument("--input-size", type=int, help="override the model input size")
    t.add_argument("--batch-size", type=int, help="override the batch size")
    t.add_argument("--lr", type=float, help="override the learning rate")
    t.add_argument("--resize-mode", choices=("resize", "tile"), help="resize whole images or tile them")
    t.add_argument("--tile-scale", type=float, help="tile mode: scale images by this before tiling")
    t.add_argument("--no-augment", action="store_true", help="no flips/rotations (orientation-fixed products)")
    t.add_argument("--set", action="append", metavar="NAME=VALUE", help="any other setting of the method's "
                   "config, e.g. --set downsamplings=3 (TrustMAE, fine-detail products) or --set use_gan=true; "
                   "repeatable; `defectlab methods` lists the settings")
    t.add_argument("--scorer", action="append", metavar="NAME", help="add a post-hoc map from the scorer "
                   f"registry ({', '.join(scorer_names())}) to the method's own maps; repeatable")
    t.add_argument("--val-fraction", type=float, default=0.1, help="normals held out for label-free thresholds")
    t.add_argument("--target-frr", type=float, default=0.01, help="target false-reject rate of good parts for "
                   "the label-free image threshold (default 0.01)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    t.add_argument("--threads", type=int, help="CPU threads for torch")
    t.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")

    e = add("evaluate", cmd_evaluate, "Metrics of a model on a labelled test split (image/pixel AUROC, AUPRO, F1).")
    e.add_argument("--model", help="model file (default: the most recently trained model)")
    e.add_argument("--data", help="dataset (default: the one the model was trained on)")
    e.add_argument("--json", help="also write the metrics as JSON to this file")
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))

    p = add("predict", cmd_predict, "Score a folder: scores.csv (file, score, verdict), overlay PNGs and, with "
            "--report, an HTML + PDF defect report.")
    p.add_argument("--model", help="model file (default: the most recently trained model)")
    p.add_argument("--input", required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", help="output folder for scores.csv and overlays (default: the --report folder)")
    p.add_argument("--report", help="folder for an inspection report: report.html, report.pdf, inspection.csv/json")
    p.add_argument("--min-area", type=int, default=DEFAULT_MIN_AREA, help="smallest defect region in pixels "
                   f"listed in the report (default {DEFAULT_MIN_AREA})")
    p.add_argument("--no-maps", action="store_true", help="write only scores.csv")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))

    x = add("export", cmd_export, "Export a model to ONNX with its thresholds and settings inside (or inspect "
            "an exported file); predict --model M.onnx runs it with ONNX Runtime.")
    x.add_argument("--model", help="model file (default: the most recently trained model)")
    x.add_argument("--format", default="onnx", choices=("onnx",), help="export format (default: onnx)")
    x.add_argument("--out", help="ONNX file to write")
    x.add_argument("--maps", help="comma-separated maps to export besides the default one")
    x.add_argument("--all-maps", action="store_true", help="export every map of the model")
    x.add_argument("--inspect", metavar="FILE", help="print the metadata of an exported ONNX file and exit")

    d = add("demo", cmd_demo, "Headless main job on the bundled demo: generate, train, evaluate, write maps.")
    d.add_argument("--category", default="metal", choices=("fabric", "metal", "tiles"),
                   help="demo product (default: metal; fabric and tiles are harder for the fast AE)")
    d.add_argument("--method", default="ae-ssim", choices=methods)
    d.add_argument("--epochs", type=int, default=40)
    d.add_argument("--out", default="defectlab-demo", help="output folder (default: ./defectlab-demo)")

    add_bench_parser(add)
    add_weights_parser(add)
    a = add("audit", cmd_audit, "Rank the training images by anomaly score and flag suspects above the "
            "model's label-free threshold (for models trained on unsorted folders).")
    a.add_argument("--model", help="model file (default: the most recently trained model)")
    a.add_argument("--data", help="training folder (default: the one the model was trained on)")
    a.add_argument("--top", type=int, default=20, help="rows to print (default 20)")
    a.add_argument("--csv", help="write the full ranking to this CSV file")
    a.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))

    m = add("methods", cmd_methods, "List the available methods, or one method's settings.")
    m.add_argument("method", nargs="?", choices=methods, help="show this method's settings (fast and paper presets)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command: exit 0 done, 2 bad input or environment (one message, no traceback), 130 cancelled."""
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGINT)
    try:
        return args.func(args)
    except (Cancelled, KeyboardInterrupt):
        print("\ncancelled; files already written are kept", file=sys.stderr)
        return EXIT_CANCELLED
    except EXPECTED_ERRORS as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        signal.signal(signal.SIGINT, previous)
