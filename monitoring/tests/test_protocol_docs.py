"""The protocol docs are generated from the classes: rendering fills the marked blocks, keeps the rest,
and refuses a document that lost a marker."""

import json

import pytest

from monitoring import protocol, protocol_docs


def _blocks(body: str = "OUTDATED TABLE") -> str:
    return "".join(f"<!-- protocol:{name} -->\n{body}\n<!-- /protocol:{name} -->\n\n" for name in protocol_docs.TABLES)


def test_the_docs_tables_and_the_schema_file_are_current():
    text = protocol_docs.MARKDOWN.read_text(encoding="utf-8")
    assert protocol_docs.render_markdown(text) == text, "run: python -m monitoring.protocol_docs"
    assert protocol_docs.SCHEMA.read_text(encoding="utf-8") == protocol_docs.render_schema()


def test_rendering_replaces_each_marked_block_and_keeps_the_text_around_it():
    text = "# Protocol\n\nIntro stays.\n\n" + _blocks() + "Outro stays.\n"
    rendered = protocol_docs.render_markdown(text)
    assert "OUTDATED TABLE" not in rendered
    assert rendered.startswith("# Protocol\n\nIntro stays.\n\n<!-- protocol:topic-frames -->\n| type | topic |")
    assert rendered.endswith("<!-- /protocol:error-codes -->\n\nOutro stays.\n")
    for cls in protocol.TOPIC_FRAMES:
        assert f"| `{cls.TYPE}` | `{cls.TOPIC}` |" in rendered
    for code in protocol.ERROR_CODES:
        assert f"`{code}`" in rendered
    assert protocol_docs.render_markdown(rendered) == rendered


@pytest.mark.parametrize("missing", list(protocol_docs.TABLES))
def test_a_document_without_a_marked_block_is_refused_naming_it(missing):
    text = _blocks().replace(f"<!-- /protocol:{missing} -->", "")
    with pytest.raises(ValueError, match=f"no <!-- protocol:{missing} --> block"):
        protocol_docs.render_markdown(text)


def test_the_schema_file_text_is_the_protocol_schema_as_indented_json():
    text = protocol_docs.render_schema()
    assert text.endswith("}\n")
    assert json.loads(text) == protocol.json_schema()
