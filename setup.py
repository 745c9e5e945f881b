"""Build hook: ship the trained models inside the package.

The canonical files live in the top-level `models/` (where `p2pmsg train`
writes them and where a checkout or an editable install reads them). A wheel
or a non-editable install has no checkout, so this copies them into
`p2pmsg/monitor/models/` in the build; the loader looks there first. All
other metadata is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODEL_FILES = ("anomaly_detector.joblib", "security_classifier.joblib", "manifest.json")


class BuildPyWithModels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's models/ directly
        source = Path(__file__).resolve().parent / "models"
        target = Path(self.build_lib) / "p2pmsg" / "monitor" / "models"
        target.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, target / name)


setup(cmdclass={"build_py": BuildPyWithModels})
