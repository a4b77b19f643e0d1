"""The getting-started walkthrough of expipe, run on expipe_git.

Each step is the code a user types, exactly as the getting-started document
(``shared/seed/getting_started.txt``) has it, with ``import expipe_git as
expipe`` and the values its copy lost (``datetime.now()``, ``2 * pq.um``)
filled in; :func:`run` executes the steps in
one namespace and prints each with what it printed, like a Python session.
The tests run the same steps and compare the output with the document.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import warnings
from collections.abc import Callable

# (what the document says, code the user types)
STEPS: list[tuple[str, str]] = [
    (
        "Create a new project with the require_project function",
        'import expipe_git as expipe\nproject = expipe.require_project("test")',
    ),
    (
        "Create an action, or return it if it exists",
        'action = project.require_action("something")',
    ),
    (
        "Give the action easily searchable properties",
        "from datetime import datetime\n"
        "action.tags = ['place cell', 'familiar environment']\n"
        "action.datetime = datetime.now()\n"
        "action.location = 'here'\n"
        "action.type = 'Recording'\n"
        "action.subjects = ['rat1']\n"
        "action.users = ['Peter', 'Mary']",
    ),
    (
        "Add a module; the template parameter is optional",
        'tracking = action.require_module("tracking", template="tracking")',
    ),
    (
        "Or create modules from dictionaries",
        "import quantities as pq\n"
        "tracking_contents = {'box_shape': {'value': 'square'}}\n"
        'tracking_module = action.require_module(name="tracking",\n'
        "                                        contents=tracking_contents)\n"
        "elphys_contents = {'depth': 2 * pq.um, }\n"
        'elphys_module = action.require_module(name="electrophysiology",\n'
        "                                      contents=elphys_contents)",
    ),
    (
        "Loop through the modules of an action like a dictionary",
        "for name, val in action.modules.items():\n"
        "    if name == 'electrophysiology':\n"
        "        print(val['depth'])",
    ),
    (
        "Retrieve the values of a module with to_dict()",
        'tracking = action.require_module(name="tracking")\nprint(tracking.to_dict())',
    ),
    (
        "Upload a template written as a dict",
        "daq_contents = {\n"
        '    "channel_count": {"definition": "The number of input channels of the DAQ-device.",\n'
        '                      "value": "64"}}\n'
        'project.require_template("hardware_daq", daq_contents)',
    ),
    (
        "Add the template to the action as a module",
        "daq = action.require_module(template='hardware_daq')",
    ),
    (
        "Retrieve the module's keys and values with to_dict()",
        "daq_dict = daq.to_dict()\nprint(daq_dict.keys())\nprint(daq_dict.values())",
    ),
    (
        "Add messages to the action",
        "from datetime import datetime\n"
        "messages = [{'message': 'hello', 'user': 'Peter', 'datetime': datetime.now()}]\n"
        "action.messages = messages",
    ),
]


def run_steps(write: Callable[[str], None] = print) -> dict:
    """Run every step in the current folder; return the namespace."""
    namespace: dict = {}
    for title, code in STEPS:
        write(f"# {title}")
        lines = code.splitlines()
        # One statement at a time, as in an interactive session, so what a
        # statement prints appears right below it.
        for statement in ast.parse(code).body:
            source = lines[statement.lineno - 1 : statement.end_lineno]
            for i, line in enumerate(source):
                write(("... " if i else ">>> ") + line)
            out = io.StringIO()
            module = ast.Module(body=[statement], type_ignores=[])
            with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                exec(compile(module, "<getting started>", "exec"), namespace)
            for line in out.getvalue().splitlines():
                write(line)
            # As the interpreter shows them, so the transcript is complete.
            for warning in caught:
                write(f"<getting started>:{statement.lineno}: {warning.category.__name__}: {warning.message}")
        write("")
    return namespace


def run(folder: str | os.PathLike[str], write: Callable[[str], None] = print) -> str:
    """Run the walkthrough in ``folder`` (created if missing); return the project path."""
    os.makedirs(folder, exist_ok=True)
    before = os.getcwd()
    os.chdir(folder)
    try:
        namespace = run_steps(write)
    finally:
        os.chdir(before)
    return str(namespace["project"].path)
