"""The README's Python snippets run as written (with a shipped checkpoint and a fresh export in place of
the paths a user's own run would have): a renamed module or attribute breaks this test, not a newcomer."""
import os
import re

from conftest import REPO, tool

ZOO = os.path.join(REPO, "paddle_gan", "zoo", "fashion_mnist")


def _snippets():
    text = open(os.path.join(REPO, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _snippet(marker):
    (code,) = [s for s in _snippets() if marker in s]
    return code


def test_every_paddle_gan_import_in_the_readme_resolves():
    imports = [ln for s in _snippets() for ln in s.splitlines() if re.match(r"\s*from paddle_gan[.\w]* import", ln)]
    assert imports
    for line in imports:
        exec(line.strip(), {})


def test_the_checkpoint_snippet_opens_a_generator():
    code = _snippet("open_generator").replace("work/quickstart/checkpoints/step_0001200", ZOO)
    scope = {}
    exec(code, scope)
    assert scope["cfg"].model.name == "dcgan" and not scope["G"].training and scope["loaded"].step > 0


def test_the_export_snippet_loads_the_export_without_paddle_gan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tool("export", "--pretrained", "fashion_mnist", "--out", "export/g") == 0
    scope = {}
    exec(_snippet("paddle.jit.load"), scope)
    assert list(scope["images"].shape) == [16, 1, 32, 32]
