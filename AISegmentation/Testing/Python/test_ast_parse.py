"""The static tests' ast.parse (AstParse.py): a 'recursion depth mismatch' SystemError is parsed again in a fresh
thread; any other error is the caller's."""

import ast
import threading

import AstParse
import pytest


def test_a_recursion_depth_mismatch_is_parsed_again_in_a_fresh_thread(monkeypatch):
    calls = []

    def mismatchOnTheMainThread(*args, **kwargs):
        onMain = threading.current_thread() is threading.main_thread()
        calls.append("main" if onMain else "thread")
        if onMain:
            raise SystemError("AST constructor recursion depth mismatch (before=126, after=28)")
        return ast.Module(body=[], type_ignores=[])

    monkeypatch.setattr(AstParse, "_originalParse", mismatchOnTheMainThread)
    assert isinstance(AstParse.parse("x = 1"), ast.Module) and calls == ["main", "thread"]


def test_other_errors_are_raised_and_the_session_uses_the_guard(monkeypatch):
    assert ast.parse is AstParse.parse
    with pytest.raises(SyntaxError):
        ast.parse("x = (")

    def otherSystemError(*args, **kwargs):
        raise SystemError("something else")

    monkeypatch.setattr(AstParse, "_originalParse", otherSystemError)
    with pytest.raises(SystemError, match="something else"):
        AstParse.parse("x = 1")
