"""Train your own nnU-Net model: the course's four-step pipeline, the Training area logic the facade composes.

    logic.trainModel(project, cases=[{"case": "c1", "volumes": ct1, "segmentation": seg1}, ...],
                     schedule="short-cpu", numberOfFolds=2, modelName="MyLiver")
    # or step by step through the area (logic.training), each resumable on its own:
    logic.training.buildTrainingDataset(project, manifest="cohort.csv", mapping="synonyms.json", testFraction=0.2)
    logic.training.planTraining(project)        # nnU-Net's fingerprint, plan, preprocessing; returns the plan
    logic.training.fitModel(project, folds=[0, 1])  # one fold after the other; startFitModel(...) returns the job
    logic.training.fitModel(project, scheduler="local")  # the folds in parallel on a Dask cluster (or tls://...)
    logic.training.evaluateTraining(project, modelName="MyLiver")  # CV metrics, best configuration, registered
    segmentation = logic.runBackend("nnunet", volume, modelFolders=["MyLiver"])
    logic.training.exportTrainedModel(project, "MyLiver.zip")

Every step runs nnU-Net's own code in the nnU-Net backend's environment as a child process (see TrainingJobs); a
step killed at any moment leaves a project that the same call resumes (training from the last epoch's checkpoint).
"""

import logging
import os
import shutil

from ..VolumeIO import _nodeIds, removeNodesAddedSince
from . import (DatasetBuilder, DatasetCases, TrainingEvaluation, TrainingJobs, TrainingMemory, TrainingReport,
               TrainingSchedules)
from .TrainingProject import TrainingProject, datasetFolderName

TRAINER = "nnUNetTrainer"


def _logProgress(percent, message):
    logging.info("%5.1f %% %s", percent, message)


class TrainingLogic:
    """See the module docstring."""

    def __init__(self, runtime, environments, loadSegmentation, importLabelmap, requireClusterConsent=None):
        """runtime(), environments(): the facade's runtime and AI EnvironmentManager; loadSegmentation(path, name) and
        importLabelmap(path, names, referenceVolume, name): its loaders; requireClusterConsent(address, security):
        TLS beyond loopback and the user's consent to send work there (as for one case and cohorts)."""
        self._requireClusterConsent = requireClusterConsent
        self._runtime = runtime
        self._environments = environments
        self._loadSegmentation = loadSegmentation
        self._importLabelmap = importLabelmap

    @staticmethod
    def trainingState(project):
        """What the project's steps recorded (training.json)."""
        return TrainingProject(project).state()

    # 1. Dataset ---------------------------------------------------------------------------------------------------

    def buildTrainingDataset(self, project, cases=None, manifest=None, datasetId=501, datasetName=None,
                             channelNames=None, mapping=None, missingStructures="error", numberOfFolds=5,
                             testFraction=0.0, seed=0, overwrite=False):
        """nnU-Net's raw layout from cases in the scene ([{"case", "volumes", "segmentation"}] or (volumes,
        segmentation) pairs) or a manifest / folder; returns the recorded dataset step (also dataset-report.html).
        mapping: label homogenization (Comparison.LabelMatching.readLabelMapping: file or dict); missingStructures:
        "error", "exclude" or "background"; testFraction: cases held out for the test split (seeded)."""
        project = TrainingProject(project)
        name = datasetFolderName(datasetId, datasetName or _safeName(os.path.basename(project.folder)))
        project.requireOwnDataset(name)
        rawFolder = project.rawFolder(name)
        if (cases is None) == (manifest is None):
            raise ValueError("Give the training cases either from the scene (cases) or as a manifest / folder")
        if os.path.exists(rawFolder) and not overwrite:
            raise ValueError(f"Project '{project.folder}' has its dataset already ({name}); pass overwrite=True "
                             "(--overwrite) to build it again (the plan and the training start over)")
        scene = self._runtime().scene
        before = _nodeIds(scene)
        try:
            if manifest is not None:
                found = DatasetCases.casesFromManifest(self._runtime(), manifest, self._loadSegmentation,
                                                       self._importLabelmap)
            else:
                found = DatasetCases.casesFromScene(cases)
            DatasetCases.requireCaseIds(found)
            kept, table, facts, messages = DatasetBuilder.checkCases(found, mapping, missingStructures)
            training, test = DatasetBuilder.splitCases([case.case for case in kept], testFraction, seed)
            DatasetBuilder.requireEnoughCases(len(training), numberOfFolds)
            channels = list(channelNames or [f"channel{index}" for index in range(len(kept[0].volumes))])
            if len(channels) != len(kept[0].volumes):
                raise ValueError(f"{len(channels)} channel name(s) given for {len(kept[0].volumes)} channel(s)")
            if overwrite:
                for folder in (rawFolder, project.preprocessedFolder(name), os.path.dirname(
                        project.modelFolder(name, "x"))):
                    shutil.rmtree(folder, ignore_errors=True)
            summary = DatasetBuilder.writeRawDataset(scene, rawFolder, kept, table, facts, channels, test,
                                                     f"AISegmentation training project {project.folder}")
        finally:
            if manifest is not None:
                removeNodesAddedSince(scene, before)
        for case in kept:
            summary[case.case].update(notes=case.notes, renamed=facts[case.case]["renamed"])
        dataset = {"id": datasetId, "name": name, "labels": table, "channels": channels, "training": training,
                   "test": test, "numberOfFolds": numberOfFolds, "seed": seed, "messages": messages,
                   "mapping": getattr(mapping, "source", mapping) if not isinstance(mapping, dict) else "(a dict)",
                   "cases": summary}
        state = {"dataset": dataset}  # a new dataset: the later steps start over
        project.saveState(state)
        TrainingReport.writeDatasetReport(project.folder, dataset)
        for message in messages:
            logging.warning("Training dataset: %s", message)
        return dataset

    # 2. Plan and preprocess ------------------------------------------------------------------------------------

    @staticmethod
    def trainingPlan(project):
        """The plan as shown before training: per configuration target spacing, patch, batch, median size."""
        import json

        project = TrainingProject(project)
        name = project.datasetName()
        path = os.path.join(project.preprocessedFolder(name), "nnUNetPlans.json")
        if not os.path.isfile(path):
            raise ValueError(f"Project '{project.folder}' has no plan yet: run the plan step first")
        with open(path, encoding="utf-8") as file:
            plans = json.load(file)
        configurations = {}
        for key, configuration in plans["configurations"].items():
            if "spacing" not in configuration:
                continue  # the cascade's entry inherits from 3d_fullres
            architecture = configuration.get("architecture", {}).get("arch_kwargs", {})
            configurations[key] = {"spacing": configuration["spacing"], "patchSize": configuration["patch_size"],
                                   "batchSize": configuration["batch_size"],
                                   "medianShape": configuration.get("median_image_size_in_voxels"),
                                   "features": architecture.get("features_per_stage")}
        return {"plansFile": path, "originalSpacing": plans.get("original_median_spacing_after_transp"),
                "configurations": configurations}

    def startPlanTraining(self, project, configurations=("3d_fullres",), planPreset=None, environment="auto"):
        """Start nnU-Net's fingerprint, planning and preprocessing (a job; wait() returns trainingPlan)."""
        project = TrainingProject(project)
        dataset = project.requireStep("dataset", "planning")
        configurations = TrainingSchedules.requireConfigurations(configurations)
        python, isolated = TrainingJobs.trainingPython(self._environments(), environment)
        options = {"action": "plan", "datasetId": dataset["id"], "datasetName": dataset["name"],
                   "configurations": configurations, "planOverrides": TrainingSchedules.planOverrides(planPreset),
                   "numberOfFolds": dataset["numberOfFolds"], "seed": 12345}
        workDir = TrainingJobs.newWorkDir()
        step = TrainingJobs.trainingStep(project, options, python, isolated, "Planning and preprocessing (nnU-Net)",
                                         workDir, dataAugmentationProcesses=1)

        def finalize(_job):
            plan = self.trainingPlan(project)
            plan.update(configurationsRequested=configurations, preset=planPreset)
            project.updateState(plan=plan, fit={}, evaluate={})
            TrainingReport.writeTrainingReport(project.folder, project.state())
            for key, configuration in plan["configurations"].items():
                logging.info("Plan %s: spacing %s mm, patch %s, batch %s", key, configuration["spacing"],
                             configuration["patchSize"], configuration["batchSize"])
            return plan

        return TrainingJobs.trainingJob("Plan and preprocess", [step], workDir, finalize).start()

    def planTraining(self, project, progressCallback=None, cancelEvent=None, **options):
        """startPlanTraining(...) and wait: returns the plan (also recorded in training.json)."""
        return self.startPlanTraining(project, **options).wait(progressCallback=progressCallback or _logProgress,
                                                               cancelEvent=cancelEvent)

    # 3. Fit ------------------------------------------------------------------------------------------------------

    def startFitModel(self, project, configuration="3d_fullres", folds=None, trainer=TRAINER, schedule="short-cpu",
                      epochs=None, iterationsPerEpoch=None, device="auto", environment="auto", onEpoch=None,
                      scheduler=None, security=None, workers=None):
        """Start training the folds (default: every fold of the dataset's split; "all": one model on every case):
        one after the other here, or in parallel on a Dask cluster, one fold per worker, when `scheduler` is given
        ("local": a LocalCluster of `workers` processes, one per fold by default; an address: that cluster, TLS
        beyond loopback, security=ClusterConnection.makeSecurity(...), after consent). Each fold resumes from its
        last checkpoint; a finished fold is not trained again. The plan's memory estimate warns (job.messages) or,
        when the run surely cannot fit, refuses. The job's ``epochs`` fill as nnU-Net logs them; onEpoch(record) is
        called for each."""
        project = TrainingProject(project)
        dataset = project.requireStep("dataset", "training")
        plan = project.requireStep("plan", "training")
        if configuration not in plan["configurations"]:
            raise ValueError(f"The plan has no configuration {configuration!r} (it has "
                             f"{', '.join(plan['configurations'])}): plan it first")
        folds = _folds(folds, dataset["numberOfFolds"])
        chosen = TrainingSchedules.schedule(schedule, epochs, iterationsPerEpoch)
        if scheduler not in (None, "local"):
            if self._requireClusterConsent is None:
                raise ValueError("Training on a Dask cluster by address needs the facade's consent check")
            scheduler = self._requireClusterConsent(scheduler, security)
        estimate = TrainingMemory.estimateTrainingMemory(
            plan["configurations"][configuration], len(dataset["channels"]), _estimatedDevice(device),
            parallelFolds=len(folds) if scheduler == "local" else 1,
            **({"availableBytes": None, "totalBytes": None} if scheduler not in (None, "local") else {}))
        python, isolated = TrainingJobs.trainingPython(self._environments(), environment)
        foldOptions = [{"action": "fit", "datasetName": dataset["name"], "configuration": configuration,
                        "fold": fold, "trainer": trainer, "schedule": chosen, "device": device} for fold in folds]
        logging.info("Training %s folds %s with the %s%s", configuration, folds, chosen["label"],
                     f" on the Dask cluster {scheduler}" if scheduler else "")

        def finalize(finished):
            return self._recordFit(project, finished, configuration, folds, trainer, chosen)

        if scheduler:
            from .ClusterFolds import ClusterFitJob

            job = ClusterFitJob(f"Training {dataset['name']}", project.folder, foldOptions,
                                python if scheduler == "local" else environment, scheduler, security, workers,
                                finalize, onEpoch)
        else:
            workDir = TrainingJobs.newWorkDir()
            steps = [TrainingJobs.trainingStep(project, options, python, isolated, f"Training fold {options['fold']}",
                                               workDir, 100 * index / len(folds), 100 * (index + 1) / len(folds))
                     for index, options in enumerate(foldOptions)]
            job = TrainingJobs.trainingJob(f"Training {dataset['name']}", steps, workDir, finalize, onEpoch)
        job.messages.extend(estimate.messages)
        job.memoryEstimate = estimate
        return job.start()

    @staticmethod
    def _recordFit(project, job, configuration, folds, trainer, chosen):
        state = project.state()
        fit = state.get("fit") or {}
        epochs = fit.get("epochs") or {}
        for fold in folds:
            key = f"{configuration} fold {fold}"
            recorded = {e["epoch"]: e for e in epochs.get(key, [])}
            recorded.update({e["epoch"]: e for e in job.epochs if e["fold"] == fold})
            epochs[key] = [recorded[number] for number in sorted(recorded)]
        trained = sorted(set(fit.get("trained", [])) | {f"{configuration}/{fold}" for fold in folds})
        fit.update(trainer=trainer, schedule=chosen, scheduleName=chosen["label"], epochs=epochs, trained=trained)
        state["fit"] = fit
        project.saveState(state)
        TrainingReport.writeTrainingReport(project.folder, state)
        return fit

    def fitModel(self, project, progressCallback=None, cancelEvent=None, **options):
        """startFitModel(...) and wait: returns the recorded fit step."""
        return self.startFitModel(project, **options).wait(progressCallback=progressCallback or _logProgress,
                                                           cancelEvent=cancelEvent)

    # 4. Evaluate and register --------------------------------------------------------------------------------------

    def startEvaluateTraining(self, project, modelName=None, configuration="3d_fullres", bestConfiguration=True,
                              device="auto", environment="auto"):
        """Start the evaluate step (a job): nnU-Net's find_best_configuration and the test split's prediction run as
        child processes (progress, log, Cancel); wait() then compares the predictions with our engine (the scene's
        thread: the panel's timer calls it), writes the reports, registers the model and returns the evaluation."""
        project = TrainingProject(project)
        dataset = project.requireStep("dataset", "evaluation")
        fit = project.requireStep("fit", "evaluation")
        folds = sorted({int(key.split("/")[1]) for key in fit["trained"] if key.startswith(f"{configuration}/")
                        and key.split("/")[1] != "all"})
        if not folds:
            raise ValueError(f"No cross-validation fold of {configuration} is trained: run the fit step first")
        TrainingEvaluation.requireValidationPredictions(project, dataset, configuration, folds)
        python, isolated = TrainingJobs.trainingPython(self._environments(), environment)
        steps, workDir = [], TrainingJobs.newWorkDir()
        modelFolder = project.modelFolder(dataset["name"], configuration)
        if bestConfiguration and len(folds) == dataset["numberOfFolds"]:
            steps.append(TrainingJobs.trainingStep(project, {"action": "best", "datasetId": dataset["id"],
                                                             "configurations": [configuration], "trainer": TRAINER,
                                                             "folds": folds}, python, isolated,
                                                   "nnU-Net: best configuration", workDir, 0, 50))
        testPredictions = project.evaluationFolder("test-predictions")
        if dataset["test"]:
            images = os.path.join(project.rawFolder(dataset["name"]), "imagesTs")
            steps.append(TrainingJobs.trainingStep(project, {"action": "predict", "modelFolder": modelFolder,
                                                             "folds": folds, "device": device, "inputFolder": images,
                                                             "outputFolder": testPredictions}, python, isolated,
                                                   "Predicting the test split", workDir, 50, 100))
        results = {}

        def finalize(_job):
            return self._recordEvaluation(project, dataset, fit, configuration, folds, modelName, results,
                                          testPredictions)

        job = TrainingJobs.trainingJob("Evaluate", steps, workDir, finalize)
        job._handleEvent = _collectResults(job, results)
        return job.start()

    def _recordEvaluation(self, project, dataset, fit, configuration, folds, modelName, results, testPredictions):
        runtime = self._runtime()
        _records, perFold, cvReport = TrainingEvaluation.evaluateCrossValidation(runtime, project, dataset,
                                                                                 configuration, folds)
        evaluation = {"configuration": configuration, "folds": folds, "perFold": perFold,
                      "reports": {"Cross-validation report": os.path.relpath(cvReport, project.folder)}}
        if "best" in results:
            evaluation["best"] = TrainingEvaluation.bestConfigurationSummary(results["best"])
        if dataset["test"]:
            names = {value: name for name, value in dataset["labels"].items()}
            records = TrainingEvaluation.comparePredictions(runtime, testPredictions, os.path.join(
                project.rawFolder(dataset["name"]), "labelsTs"), names)
            from ..Reports.CohortReport import writeCohortOutputs

            paths = writeCohortOutputs(records, project.evaluationFolder("test"))
            evaluation["test"] = TrainingEvaluation.perFoldSummary(records, configuration, "test")
            evaluation["reports"]["Test-split report"] = os.path.relpath(paths["report"], project.folder)
        name = modelName or dataset["name"]
        modelFolder = project.modelFolder(dataset["name"], configuration)
        state = project.state()
        cvDice = {row["structure"]: row["dice"] for row in _meanOverFolds(perFold)}
        provenance = {"project": project.folder, "dataset": dataset["name"], "cases": dataset["training"],
                      "testCases": dataset["test"], "configuration": configuration, "folds": folds,
                      "trainer": fit["trainer"], "schedule": fit["scheduleName"],
                      "epochs": fit["schedule"]["epochs"], "crossValidationDice": cvDice}
        TrainingEvaluation.registerTrainedModel(name, modelFolder, provenance)
        evaluation.update(modelName=name, modelFolder=modelFolder, provenance=provenance)
        state["evaluate"] = evaluation
        project.saveState(state)
        TrainingReport.writeTrainingReport(project.folder, state)
        return evaluation

    def evaluateTraining(self, project, modelName=None, configuration="3d_fullres", bestConfiguration=True,
                         device="auto", environment="auto", progressCallback=None, cancelEvent=None):
        """Cross-validation predictions evaluated with our comparison engine (cohort tables, plots, report),
        nnU-Net's find_best_configuration and post-processing decision, the held-out test split predicted and
        evaluated; the model registered in the nnU-Net backend's list as modelName (default: the dataset's name).
        startEvaluateTraining(...) and wait: returns the evaluation (also recorded in training.json)."""
        job = self.startEvaluateTraining(project, modelName, configuration, bestConfiguration, device, environment)
        return job.wait(progressCallback=progressCallback or _logProgress, cancelEvent=cancelEvent)

    @staticmethod
    def exportTrainedModel(project, zipPath, configuration="3d_fullres"):
        """A zip of the trained model that the nnU-Net backend's offline import (importNnUNetModel) accepts."""
        project = TrainingProject(project)
        return TrainingEvaluation.exportModelZip(project.modelFolder(project.datasetName(), configuration), zipPath)

    # All ---------------------------------------------------------------------------------------------------------

    def trainModel(self, project, cases=None, manifest=None, configuration="3d_fullres", folds=None,
                   schedule="short-cpu", epochs=None, iterationsPerEpoch=None, planPreset=None, device="auto",
                   modelName=None, environment="auto", progressCallback=None, cancelEvent=None, scheduler=None,
                   security=None, workers=None, onEpoch=None, **datasetOptions):
        """The four steps; a step already done in the project is not done again (give cases / a manifest only for
        a new project); scheduler, security, workers: the folds on a Dask cluster (see startFitModel), its address
        checked (TLS beyond loopback, consent) before any step runs; onEpoch(record): each epoch of the fit.
        Returns the evaluate step's record."""
        if scheduler not in (None, "local"):
            if self._requireClusterConsent is None:
                raise ValueError("Training on a Dask cluster by address needs the facade's consent check")
            scheduler = self._requireClusterConsent(scheduler, security)
        state = TrainingProject(project).state()
        if not state.get("dataset"):
            self.buildTrainingDataset(project, cases, manifest, **datasetOptions)
        if not TrainingProject(project).state().get("plan"):
            self.planTraining(project, progressCallback, cancelEvent, configurations=[configuration],
                              planPreset=planPreset, environment=environment)
        self.fitModel(project, progressCallback, cancelEvent, configuration=configuration, folds=folds,
                      schedule=schedule, epochs=epochs, iterationsPerEpoch=iterationsPerEpoch, device=device,
                      environment=environment, scheduler=scheduler, security=security, workers=workers,
                      onEpoch=onEpoch)
        return self.evaluateTraining(project, modelName, configuration, device=device, environment=environment,
                                     progressCallback=progressCallback, cancelEvent=cancelEvent)


def _safeName(text):
    name = "".join(character if character.isalnum() or character in "_-" else "_" for character in text).strip("_")
    return name[:40] or "Training"


def _estimatedDevice(device):
    """The device a fit on `device` ("auto": a GPU when nvidia-smi finds one) is estimated for."""
    if device != "auto":
        return str(device).split(":")[0]
    from ..Backends.Environments.TorchSelection import nvidiaDriverVersion

    return "cuda" if nvidiaDriverVersion() is not None else "cpu"


def _folds(folds, numberOfFolds):
    if folds is None:
        return list(range(numberOfFolds))
    folds = [folds] if isinstance(folds, (int, str)) else list(folds)
    result = []
    for fold in folds:
        text = str(fold).strip()
        if text == "all":
            result.append("all")
        elif text.isdigit() and int(text) < numberOfFolds:
            result.append(int(text))
        else:
            raise ValueError(f"Invalid fold {fold!r}: use 0..{numberOfFolds - 1} or 'all'")
    return result


def _meanOverFolds(perFold):
    byStructure = {}
    for row in perFold:
        byStructure.setdefault(row["structure"], []).append(row["dice"])
    return [{"structure": name, "dice": sum(values) / len(values)} for name, values in byStructure.items()]


def _collectResults(job, results):
    """Keep each step's result event by its action (the evaluate job runs several)."""
    original = job._handleEvent

    def handle(event, step, outcome):
        if event.get("type") == "result":
            for action in ("best", "outputFolder"):
                if action in event:
                    results["best" if action == "best" else "predict"] = event.get(action)
        return original(event, step, outcome)

    return handle
