#!/usr/bin/env python3
"""Writes the Fashion-MNIST subset that ships in the repository (src/Cbp.Samples/Data/fashion-mnist-subset).

Source: the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), which puts the
original IDX files in /usr/share/datasets/fashion-mnist. The subset keeps the IDX format, so one reader
serves both: the first TRAIN rows of the training set whose class counts are balanced (TRAIN/10 per class,
in file order) and the first TEST rows of the test set. Deterministic: the same package gives the same bytes.
"""
import gzip, os, struct, sys

SOURCE = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "Cbp.Samples", "Data", "fashion-mnist-subset")
TRAIN, TEST = 6000, 1000


def read(kind):
    with gzip.open(os.path.join(SOURCE, f"{kind}-images-idx3-ubyte.gz")) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, magic
        images = [f.read(rows * cols) for _ in range(n)]
    with gzip.open(os.path.join(SOURCE, f"{kind}-labels-idx1-ubyte.gz")) as f:
        magic, n2 = struct.unpack(">II", f.read(8))
        assert magic == 2049 and n2 == n, (magic, n2, n)
        labels = f.read(n)
    return images, labels, rows, cols


def write(kind, images, labels, rows, cols):
    # mtime=0 keeps the gzip bytes reproducible.
    with open(os.path.join(TARGET, f"{kind}-images-idx3-ubyte.gz"), "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 2051, len(images), rows, cols))
        for image in images:
            f.write(image)
    with open(os.path.join(TARGET, f"{kind}-labels-idx1-ubyte.gz"), "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(struct.pack(">II", 2049, len(labels)))
        f.write(bytes(labels))


def main():
    if not os.path.isdir(SOURCE):
        sys.exit(f"{SOURCE} not found: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist).")
    os.makedirs(TARGET, exist_ok=True)
    images, labels, rows, cols = read("train")
    per_class = TRAIN // 10
    counts = [0] * 10
    keep = []
    for i, label in enumerate(labels):
        if counts[label] < per_class:
            counts[label] += 1
            keep.append(i)
        if len(keep) == TRAIN:
            break
    write("train", [images[i] for i in keep], [labels[i] for i in keep], rows, cols)
    images, labels, rows, cols = read("t10k")
    write("t10k", images[:TEST], list(labels[:TEST]), rows, cols)
    print(f"wrote {TRAIN} training and {TEST} test images to {os.path.normpath(TARGET)}")


if __name__ == "__main__":
    main()
