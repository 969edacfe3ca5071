"""Recurrent layers written as the textbook equations.

- :class:`SimpleRNNCell` / :class:`SimpleRNN` — Elman network
- :class:`LSTMCell` / :class:`LSTM` — long short-term memory
- :class:`GRUCell` / :class:`GRU` — gated recurrent unit
- :class:`RNN` — the time loop that runs any cell
- :class:`Bidirectional` — forward + backward layer
- :func:`from_keras` / :func:`to_keras` — conversion from and to Keras'
  recurrent layers (a layer or every recurrent layer of a model)
- :class:`TiedEmbedding` — embedding shared with the output layer
- :class:`CharacterFeatures` — per-word features from its characters
- :class:`ContextualCharacterEmbeddings` — per-word states of character
  language models over the sentence (Flair's embeddings)
- :class:`JoinFeatures` — per-word features joined to the words, the
  words' mask kept
- :class:`CRF` — linear-chain CRF: forward-algorithm NLL, Viterbi decoding
- :class:`Attention` — Luong or Bahdanau attention over encoder outputs
- :class:`RareWordDropout` — rare words read as unknown, in training
- :class:`LockedDropout`, :class:`EmbeddingDropout`,
  :class:`ActivationRegularization` — AWD-LSTM's regularizers (with the
  cells' ``weight_drop``)
- :class:`HashedBigrams` — word-bigram bucket ids, for a bag of bigrams
- :class:`NgramLogits` — a fitted linear model over words and bigrams, added
  to a network's logits in inference
- :class:`SequencePooling` — masked last / max / mean pooling over time
"""

from nlpseq.layers.attention import Attention
from nlpseq.layers.base import RecurrentCell
from nlpseq.layers.bidirectional import Bidirectional
from nlpseq.layers.char_features import CharacterFeatures
from nlpseq.layers.contextual_chars import ContextualCharacterEmbeddings
from nlpseq.layers.convert import from_keras, to_keras
from nlpseq.layers.crf import CRF
from nlpseq.layers.embedding import TiedEmbedding
from nlpseq.layers.gru import GRU, GRUCell
from nlpseq.layers.join import JoinFeatures
from nlpseq.layers.lstm import LSTM, LSTMCell
from nlpseq.layers.ngrams import HashedBigrams, NgramLogits
from nlpseq.layers.pooling import SequencePooling
from nlpseq.layers.regularization import (
    ActivationRegularization,
    EmbeddingDropout,
    LockedDropout,
)
from nlpseq.layers.rnn import RNN
from nlpseq.layers.simple_rnn import SimpleRNN, SimpleRNNCell
from nlpseq.layers.word_dropout import RareWordDropout

__all__ = [
    "ActivationRegularization", "Attention", "Bidirectional", "CRF",
    "CharacterFeatures", "ContextualCharacterEmbeddings", "EmbeddingDropout",
    "GRU", "GRUCell",
    "HashedBigrams", "JoinFeatures", "LSTM", "LSTMCell", "LockedDropout", "NgramLogits",
    "RNN", "RareWordDropout",
    "RecurrentCell", "SequencePooling", "SimpleRNN", "SimpleRNNCell",
    "TiedEmbedding", "from_keras", "to_keras",
]
