#!/usr/bin/env python3
"""Tests of import-cycles.py on small crates written to a temporary folder.

    python3 deploy/lint/test_import_cycles.py
"""
import importlib.util
import io
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("import_cycles", os.path.join(HERE, "import-cycles.py"))
lint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lint)


def crate(files):
    """A crate's src folder holding these files (path -> text)."""
    src = tempfile.mkdtemp(prefix="lint-")
    for path, text in files.items():
        full = os.path.join(src, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
    return src


def circles(files):
    out = io.StringIO()
    found = lint.check(crate(files), out)
    return found, out.getvalue()


class Circles(unittest.TestCase):
    def test_a_circle_of_only_child_and_super_paths(self):
        found, text = circles({
            "lib.rs": "mod a;\nmod b;\n",
            "a/mod.rs": "mod child;\nuse child::Thing;\n",
            "a/child.rs": "use super::super::b::Other;\npub struct Thing;\n",
            "b.rs": "use super::a::Thing;\npub struct Other;\n",
        })
        self.assertEqual(found, 1, text)
        self.assertIn("a <-> b", text)
        self.assertIn("a uses b (a::child names b)", text)

    def test_a_circle_that_closes_only_through_a_file_inside_a_folder(self):
        found, text = circles({
            "lib.rs": "mod ssh;\nmod workspace;\nmod store;\n",
            "ssh/mod.rs": "mod known_hosts;\npub use known_hosts::KnownHosts;\n",
            "ssh/known_hosts/mod.rs": "use crate::workspace::private_file;\n",
            "workspace.rs": "use crate::store::Store;\n",
            "store.rs": "fn f() { crate::ssh::connect(); }\n",
        })
        self.assertEqual(found, 1, text)
        self.assertIn("ssh <-> store <-> workspace", text)
        self.assertIn("ssh uses workspace (ssh::known_hosts names workspace)", text)

    def test_nested_braces_and_self_are_imports(self):
        found, text = circles({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::{b::{self, x}, c};\n",
            "b.rs": "use crate::{a as other};\n",
        })
        self.assertEqual(found, 1, text)

    def test_a_parent_and_its_children_may_use_each_other(self):
        found, text = circles({
            "lib.rs": "mod a;\n",
            "a/mod.rs": "mod x;\nmod y;\nuse x::X;\npub fn f() {}\n",
            "a/x.rs": "use super::f;\nuse super::y::Y;\npub struct X;\n",
            "a/y.rs": "pub struct Y;\n",
        })
        self.assertEqual(found, 0, text)

    def test_layers_that_point_down_have_no_circle(self):
        found, text = circles({
            "lib.rs": "mod cmd;\nmod job;\nmod ssh;\n",
            "cmd/mod.rs": "mod run;\n",
            "cmd/run.rs": "use crate::job::start;\n",
            "job/mod.rs": "pub fn start() { crate::ssh::connect(); }\n",
            "ssh/mod.rs": "pub fn connect() {}\n",
        })
        self.assertEqual(found, 0, text)

    def test_paths_in_comments_and_strings_are_not_imports(self):
        found, text = circles({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": "// use crate::a::A;\n/* crate::a::f() */\nconst S: &str = \"crate::a::A\";\nconst C: char = '\"';\nconst T: &str = \"crate::a\";\n",
        })
        self.assertEqual(found, 0, text)

    def test_an_inline_child_path_is_an_import(self):
        found, text = circles({
            "lib.rs": "mod a;\nmod b;\n",
            "a/mod.rs": "mod inner;\nfn f() { inner::g(); }\n",
            "a/inner.rs": "pub fn g() { crate::b::h(); }\n",
            "b.rs": "pub fn h() { crate::a::f(); }\n",
        })
        self.assertEqual(found, 1, text)


if __name__ == "__main__":
    unittest.main()
