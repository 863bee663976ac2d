"""The ``train`` subcommand of the headless CLI: train your own nnU-Net model (Training/), step by step or all at once.

    aisegmentation train dataset  --project DIR (--manifest CSV_OR_FOLDER) [--mapping FILE] [--missing error|exclude|
                                  background] [--folds 5] [--test-fraction 0.2] [--channels CT] [--overwrite]
    aisegmentation train plan     --project DIR [--configurations 3d_fullres] [--preset tiny]
    aisegmentation train fit      --project DIR [--configuration 3d_fullres] [--fold 0 --fold 1] [--schedule short-cpu|
                                  full] [--epochs N] [--iterations N] [--device auto|cpu|cuda|mps]
                                  [--scheduler local|ADDRESS [--workers N] [--tls-ca-file CA --tls-cert CERT
                                  --tls-key KEY]]   (the folds in parallel on a Dask cluster, one per worker)
    aisegmentation train evaluate --project DIR [--model-name NAME] [--export MODEL.zip]
    aisegmentation train all      --project DIR --manifest CSV_OR_FOLDER [every option above, --scheduler too]

Each step is resumable: run it again after Ctrl-C or a crash (training continues from the last epoch's checkpoint).
The "short-cpu" schedule is a short CPU schedule to try the pipeline, not a model to rely on.
"""

import argparse
import logging
import sys

from ..Training.TrainingSchedules import CONFIGURATIONS, PLAN_PRESETS, SCHEDULES
from .Segment import addClusterArguments, allowClusterForThisRun, clusterSecurity

STEPS = ("dataset", "plan", "fit", "evaluate", "all")


def _datasetArguments(parser, required):
    parser.add_argument("--manifest", required=required, help="CSV manifest (case,image,reference) or a folder "
                                                             "(imagesTs/<case>_0000.nii.gz, labelsTs/<case>.nii.gz)")
    parser.add_argument("--mapping", help="label homogenization: JSON or CSV of synonyms -> structure names")
    parser.add_argument("--missing", default="error", choices=("error", "exclude", "background"),
                        help="a structure missing from a case: stop (default), leave the case out, or background")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=0.0, help="cases held out for testing (0..1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test split (default: %(default)s)")
    parser.add_argument("--dataset-id", type=int, default=501, help="nnU-Net dataset id (default: %(default)s)")
    parser.add_argument("--dataset-name", help="nnU-Net dataset name (default: from the project folder)")
    parser.add_argument("--channels", nargs="+", help="channel names (CT: nnU-Net's CT normalization)")
    parser.add_argument("--overwrite", action="store_true", help="build the dataset again (plan and training too)")


def _planArguments(parser):
    parser.add_argument("--configurations", nargs="+", default=["3d_fullres"], choices=CONFIGURATIONS)
    parser.add_argument("--preset", choices=tuple(PLAN_PRESETS), help="shrink nnU-Net's plan (tiny: tests, demos)")


def _fitArguments(parser, withConfiguration=True):
    if withConfiguration:
        parser.add_argument("--configuration", default="3d_fullres", choices=CONFIGURATIONS)
    parser.add_argument("--fold", action="append", dest="trainFolds", help="a fold to train (repeat; 'all': one "
                                                                           "model on every case); default: every fold")
    parser.add_argument("--trainer", default="nnUNetTrainer", help="nnU-Net trainer class (default: %(default)s)")
    parser.add_argument("--schedule", default="short-cpu", choices=tuple(SCHEDULES),
                        help="; ".join(f"{name}: {value['label']}" for name, value in SCHEDULES.items()))
    parser.add_argument("--epochs", type=int, help="epochs (replaces the schedule's)")
    parser.add_argument("--iterations", type=int, help="iterations per epoch (replaces the schedule's)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    addClusterArguments(parser)  # "local" too: a LocalCluster here
    parser.add_argument("--workers", type=int, help="workers of a local cluster (default: one per fold)")


def _evaluateArguments(parser):
    parser.add_argument("--model-name", help="name in the nnU-Net backend's model list (default: the dataset's)")
    parser.add_argument("--export", help="also write the model as a zip (the nnU-Net backend's offline import)")


def addTrainParser(commands):
    train = commands.add_parser("train", help="train your own nnU-Net model: dataset, plan, fit, evaluate",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = train.add_subparsers(dest="trainStep", required=True, metavar="STEP")
    parsers = {step: steps.add_parser(step, help=f"the {step} step" if step != "all" else "every step")
               for step in STEPS}
    for step, parser in parsers.items():
        parser.add_argument("--project", required=True, help="the project folder (one dataset)")
        parser.add_argument("--environment", default="auto", help="Python of nnU-Net: auto, isolated or a path")
    _datasetArguments(parsers["dataset"], True)
    _datasetArguments(parsers["all"], False)
    _planArguments(parsers["plan"])
    _planArguments(parsers["all"])
    _fitArguments(parsers["fit"])
    _fitArguments(parsers["all"], withConfiguration=False)
    _evaluateArguments(parsers["evaluate"])
    _evaluateArguments(parsers["all"])
    return train


def _datasetOptions(args):
    return {"manifest": args.manifest, "mapping": args.mapping, "missingStructures": args.missing,
            "numberOfFolds": args.folds, "testFraction": args.test_fraction, "seed": args.seed,
            "datasetId": args.dataset_id, "datasetName": args.dataset_name, "channelNames": args.channels}


def _fitOptions(args):
    return {"folds": args.trainFolds, "trainer": args.trainer, "schedule": args.schedule, "epochs": args.epochs,
            "iterationsPerEpoch": args.iterations, "device": args.device, "environment": args.environment}


def _cluster(logic, args):
    """The folds on a Dask cluster: --scheduler local, or an address (passing it is the consent for this run; TLS
    beyond this machine is still required, checked before any step runs)."""
    if not args.scheduler:
        return {}
    address = args.scheduler if args.scheduler == "local" else allowClusterForThisRun(logic, args)
    return {"scheduler": address, "security": clusterSecurity(args), "workers": args.workers}


def _progress(percent, message):
    logging.info("%5.1f %% %s", percent, message)


def _printPlan(plan):
    for name, configuration in plan["configurations"].items():
        print(f"{name}: target spacing {configuration['spacing']} mm, patch {configuration['patchSize']}, batch "
              f"{configuration['batchSize']}, median size {configuration['medianShape']}")


def _printEvaluation(evaluation):
    for row in evaluation["perFold"]:
        print(f"{row['configuration']} fold {row['fold']} {row['structure']}: Dice {row['dice']:.4f} "
              f"(n={row['n']})")
    print(f"Model '{evaluation['modelName']}': {evaluation['modelFolder']}")


def _printEpoch(record):
    print(f"fold {record['fold']} epoch {record['epoch']}/{record['epochs']}: train loss {record['trainLoss']:.4f}, "
          f"validation loss {record['validationLoss']:.4f}, pseudo-Dice "
          f"{', '.join(f'{value:.3f}' for value in record['pseudoDice'])} ({record['seconds']:.1f} s)", flush=True)


def runTrain(logic, args):
    training = logic.training
    step, project = args.trainStep, args.project
    if step == "dataset":
        dataset = training.buildTrainingDataset(project, overwrite=args.overwrite, **_datasetOptions(args))
        print(f"{dataset['name']}: {len(dataset['training'])} training, {len(dataset['test'])} test cases; labels "
              f"{dataset['labels']}")
    elif step == "plan":
        _printPlan(training.planTraining(project, _progress, configurations=args.configurations,
                                         planPreset=args.preset, environment=args.environment))
    elif step == "fit":
        job = training.startFitModel(project, configuration=args.configuration, onEpoch=_printEpoch,
                                     **_fitOptions(args), **_cluster(logic, args))
        for message in job.messages:
            print(f"Warning: {message}", file=sys.stderr, flush=True)
        job.wait(progressCallback=_progress)
    elif step == "evaluate":
        _printEvaluation(training.evaluateTraining(project, args.model_name, environment=args.environment,
                                                   progressCallback=_progress))
    else:
        options = _fitOptions(args)
        options.pop("environment")
        evaluation = training.trainModel(project, configuration=args.configurations[0], planPreset=args.preset,
                                         modelName=args.model_name, environment=args.environment,
                                         progressCallback=_progress, overwrite=args.overwrite, onEpoch=_printEpoch,
                                         **options, **_cluster(logic, args), **_datasetOptions(args))
        _printEvaluation(evaluation)
    if step in ("evaluate", "all") and args.export:
        print(f"Exported {training.exportTrainedModel(project, args.export)}")
    return 0
