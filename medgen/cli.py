"""``medgen`` command line: check and show configs without running the workflow, and show
what a trained model is (its model card).

The workflow itself runs through Snakemake (see README); these commands help write the
per-dataset config files it takes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import yaml

from medgen import __version__, registry
from medgen import config as medgen_config
from medgen.errors import MedgenInputError
from medgen.synthetic_output import check_out


def _check_sample_sheets(resolved: dict) -> None:
    """Read the sample sheets of the anomaly and synthesis tasks in ``tasks`` as the workflow
    plans them (columns, files, subjects, splits); one MedgenInputError naming the sheet."""
    if "anomaly" in resolved["tasks"]:
        from medgen.tasks.anomaly.sheet import read_anomaly_sheet

        try:
            read_anomaly_sheet(resolved["anomaly"], resolved["seed"],
                               new_data=resolved["apply"]["activate"])
        except MedgenInputError as err:
            raise MedgenInputError(f"invalid anomaly sample sheet: {err}") from None
    if "synthesis" in resolved["tasks"]:
        from medgen.tasks.synthesis.pairs import read_synthesis_sheet  # torch: only if asked

        try:
            read_synthesis_sheet(resolved["synthesis"], new_data=resolved["apply"]["activate"])
        except MedgenInputError as err:
            raise MedgenInputError(f"invalid synthesis sample sheet: {err}") from None


def _cmd_validate(args: argparse.Namespace) -> int:
    resolved = medgen_config.load(args.configfiles)
    if resolved["apply"]["activate"]:
        from medgen.apply import check_apply_config  # torch: only for apply configs

        check_apply_config(resolved)
    _check_sample_sheets(resolved)
    names = " + ".join(args.configfiles) or str(medgen_config.DEFAULT_CONFIG_PATH)
    print(f"{names}: valid")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    resolved = medgen_config.load(args.configfiles)
    for family, section in resolved["models"].items():
        section["resolved_params"] = registry.resolve_hparams(
            family, section["preset"], section["params"]
        )
    yaml.safe_dump(resolved, sys.stdout, sort_keys=False)
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    families = [args.family] if args.family else sorted(registry.FAMILIES)
    for family in families:
        spec = registry.get(family)
        section = registry.task(spec.task).section
        where = (f"a baseline: {section}.evaluation.baselines" if spec.baseline
                 else f"{section}.families; models.{family}.preset")
        print(f"# {family} ({spec.task}): {spec.description} [{where}]")
        yaml.safe_dump({family: registry.presets(family)}, sys.stdout, sort_keys=False)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from medgen import model_card  # torch (weights-only read; no network is built)

    print(model_card.info(args.model), end="")
    return 0


def _parse_counts(text: str) -> int | dict[str, int]:
    """'1000' -> 1000; 'BRCA=300,PRAD=100' -> {'BRCA': 300, 'PRAD': 100} (counts checked
    by the sampler)."""
    if "=" not in text:
        try:
            return int(text)
        except ValueError:
            raise MedgenInputError(f"--n {text!r}: expected a number or category=count pairs "
                                   "separated by commas (BRCA=300,PRAD=100)") from None
    counts: dict[str, int] = {}
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        if name.strip() in counts:
            raise MedgenInputError(f"--n: category {name.strip()!r} is given twice")
        try:
            counts[name.strip()] = int(value)
        except ValueError:
            raise MedgenInputError(f"--n: {pair!r} is not category=count") from None
    return counts


def _seed(text: str) -> int:
    """A seed numpy takes: a whole number in [0, 2**32 - 1], as the config's ``seed``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..4294967295")
    return value


def _cmd_sample(args: argparse.Namespace) -> int:
    from medgen import checkpoint, model_card
    from medgen.tasks.anomaly import GENERATIVE_FAMILIES as ANOMALY_GENERATORS

    ckpt = checkpoint.load(args.model)
    family = ckpt.family
    task = registry.get(family).task
    counts = _parse_counts(args.n)
    out = Path(args.out)  # check_out is given args.out: Path() drops a trailing '/'
    # what no output may overwrite: the model, its card, the data this request reads and
    # every input the model's provenance records (its training FASTA, table or h5ad)
    model_dir = Path(args.model).parent
    inputs = [args.model, model_dir / model_card.CARD_JSON, model_dir / model_card.CARD_MD,
              args.training_data, *model_card.input_files(ckpt.provenance)]
    if task != "expression" and (args.latent != "prior" or args.training_data):
        raise MedgenInputError(f"--latent and --training-data are options of tybalt models; "
                               f"{args.model} is a {family} model, drawn from its prior")
    if task == "expression":
        from medgen.tasks.expression.sampling import sample_expression

        check_out(args.out, (".h5ad",), [out], inputs, "an h5ad of profiles")
        sample_expression(args.model, counts, out, seed=args.seed,
                          data_path=args.training_data, latent=args.latent)
    elif task == "sequence_design" and family == "dna_gan":
        from medgen.tasks.sequence_design.apply import sample_sequences

        if not isinstance(counts, int):
            raise MedgenInputError("--n: a dna_gan model has no categories; give a number")
        check_out(args.out, (".fa", ".fasta", ".fna"), [out, f"{out}.tsv", f"{out}.json"],
                  inputs, "a FASTA of sequences")
        sample_sequences(args.model, counts, out, seed=args.seed)
    elif task == "anomaly" and family in ANOMALY_GENERATORS:
        from medgen.tasks.anomaly.sampling import sample_images, sidecar_paths

        if not isinstance(counts, int):
            raise MedgenInputError(f"--n: a {family} model has no categories; give a number")
        check_out(args.out, (".npz",), [out, *sidecar_paths(out)], inputs, "an npz of images")
        sample_images(args.model, counts, out, seed=args.seed)
    else:
        raise MedgenInputError(f"{args.model}: the {family} model ({task}) does not generate "
                               "samples; medgen sample takes tybalt, dna_gan, anogan or "
                               "fanogan models")
    print(args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medgen", description=__doc__)
    parser.add_argument("--version", action="version", version=f"medgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser(
        "validate", help="validate config file(s), layered on the defaults in order")
    validate.add_argument("configfiles", nargs="*", metavar="configfile",
                          help="config/datasets/<name>.yaml (several: as --configfile A B)")
    validate.set_defaults(func=_cmd_validate)

    show = sub.add_parser("show-config", help="print the resolved config, presets applied")
    show.add_argument("configfiles", nargs="*", metavar="configfile",
                      help="config/datasets/<name>.yaml (several: layered in order)")
    show.set_defaults(func=_cmd_show)

    presets = sub.add_parser("presets", help="print the presets of each model family")
    presets.add_argument("family", nargs="?", choices=sorted(registry.FAMILIES))
    presets.set_defaults(func=_cmd_presets)

    info = sub.add_parser(
        "info", help="print a trained model's card (family, training data, held-out metrics "
        "beside the baselines, intended use, limits, how to apply) without building it")
    info.add_argument("model", help="a model.pt (or its folder) a training run wrote")
    info.set_defaults(func=_cmd_info)

    sample = sub.add_parser(
        "sample", help="write N synthetic samples of a trained generative model (tybalt: "
        "an h5ad of profiles; dna_gan: a FASTA; anogan, fanogan: an npz of images with a "
        "PNG grid and a JSON beside it), flagged synthetic, with provenance")
    sample.add_argument("model", help="a model.pt a training run wrote")
    sample.add_argument("--n", required=True,
                        help="how many: a number, or per category of a conditional model "
                             "(BRCA=300,PRAD=100)")
    sample.add_argument("--out", required=True,
                        help="the h5ad (tybalt), FASTA (dna_gan) or .npz (anogan, fanogan)")
    sample.add_argument("--seed", type=_seed, default=0,
                        help="seeds the draws (0..4294967295): the same seed, the same samples")
    sample.add_argument("--training-data", default=None,
                        help="the preprocessed training h5ad: splits a plain --n of a "
                             "conditional model by the training shares; needed by "
                             "--latent aggregate_posterior")
    sample.add_argument("--latent", choices=["prior", "aggregate_posterior"], default="prior",
                        help="tybalt: decode z from the prior N(0, I) or from a Gaussian "
                             "mixture fitted on the training profiles' latent means")
    sample.set_defaults(func=_cmd_sample)
    return parser


def _terminate(signum, frame) -> None:
    """SIGTERM (a cancelled Snakemake or SLURM job, ``kill``) unwinds like Ctrl-C, so that
    every partly written output is removed (``medgen.atomic``)."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.func(args)
    except MedgenInputError as err:
        print(f"medgen: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `medgen show-config | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    finally:
        if main_thread:  # called in-process (tests, notebooks): the caller's handler again
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
