"""Validation accuracy of a classifier trained with ``--ngram-buckets``:
its network alone, its n-gram model alone and the two joined.

The model's output is ``activation(network logits + weight * n-gram
logits)``; this script reads the two logits apart (the input of the
``ngram_logits`` layer and the layer's ``ngram_logits``) and scores each
sign on the data. A quality analysis of a trained model (docs/transfer.md),
not a speed benchmark: it is not part of ``make bench``.

    python bench/ngram_parts.py saved_models/imdb_transfer \\
        ../shared/datasets/imdb/valid.csv.gz
"""

import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a sentiment or topic model folder "
                        "trained with --ngram-buckets")
    parser.add_argument("data", help="a labelled data SPEC (as `evaluate`)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import keras

    import nlpseq
    from nlpseq.data.labelled import encode_labels
    from nlpseq.training import pad

    task = nlpseq.load(args.model_dir)
    if len(task.class_names) != 2:
        parser.error(f"{args.model_dir}: {len(task.class_names)} classes; "
                     "this script scores two-class models")
    try:
        layer = task.model.get_layer("ngram_logits")
    except ValueError:
        parser.error(f"{args.model_dir}: no n-gram model (trained without "
                     "--ngram-buckets)")
    data = task.read_data(args.data, "evaluate")
    y = encode_labels(data.labels, task.class_names) == 1
    network = keras.Model(task.model.inputs, layer.input[1])
    ids = task.encode_texts(data.texts)
    net, ngram = [], []
    for i in range(0, len(ids), args.batch_size):
        batch = pad(ids[i:i + args.batch_size])
        net.append(np.asarray(network(batch, training=False))[:, 0])
        ngram.append(np.asarray(layer.ngram_logits(batch))[:, 0])
    net, ngram = np.concatenate(net), np.concatenate(ngram)
    joined = net + layer.weight * ngram
    for name, logits in (("network alone", net), ("n-gram model alone", ngram),
                         (f"joined (weight {layer.weight:g})", joined)):
        print(f"{name}: {np.mean((logits > 0) == y):.4f}")


if __name__ == "__main__":
    main()
