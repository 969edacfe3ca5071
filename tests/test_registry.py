import pytest

from nlpseq.registry import CELLS, Registry


def test_lazy_entries_resolve_to_classes():
    from nlpseq.layers import GRU, LSTM, SimpleRNN

    assert CELLS.names() == ["gru", "lstm", "rnn"]
    assert CELLS.get("lstm") is LSTM
    assert CELLS.get("gru") is GRU
    assert CELLS.get("rnn") is SimpleRNN
    assert CELLS.describe("rnn") == "nlpseq.layers.simple_rnn.SimpleRNN"


def test_duplicate_name_is_refused():
    registry = Registry("widget", {"a": "math:sqrt"})
    with pytest.raises(ValueError, match="widget named 'a' is already"):
        registry.register("a", "math:floor")


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError) as error:
        CELLS.get("transformer")
    assert str(error.value) == (
        "Unknown cell 'transformer', expected one of: gru, lstm, rnn.")


def test_decorator_registers_the_class():
    registry = Registry("thing")

    @registry.register("mine")
    class Mine:
        pass

    assert registry.get("mine") is Mine
    assert "mine" in registry and list(registry) == ["mine"]
