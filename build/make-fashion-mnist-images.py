#!/usr/bin/env python3
"""Writes the image folder that ships with the repository (src/Cbp.Samples/Data/fashion-mnist-images): real images
for the `images` sample, in the layout an image-classification folder has (one subfolder per class of PNG files).

Source: the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), which puts the original
IDX files in /usr/share/datasets/fashion-mnist. The first PER_CLASS images of each class of the Fashion-MNIST *test*
set, in file order, as 8-bit greyscale 28x28 PNG files named by their index in the test set. The PNG encoder is
written out below (zlib only), so the script needs nothing beyond Python's standard library. Deterministic: the same
package gives the same bytes.
"""
import gzip, os, shutil, struct, sys, zlib

SOURCE = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "Cbp.Samples", "Data", "fashion-mnist-images")
PER_CLASS = 40
CLASSES = ["T-shirt-top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle-boot"]
LICENSE_SOURCE = os.path.join(os.path.dirname(TARGET), "fashion-mnist-subset", "LICENSE")


def png(width, height, pixels):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def main():
    with gzip.open(os.path.join(SOURCE, "t10k-images-idx3-ubyte.gz")) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, magic
        images = [f.read(rows * cols) for _ in range(n)]
    with gzip.open(os.path.join(SOURCE, "t10k-labels-idx1-ubyte.gz")) as f:
        magic, n2 = struct.unpack(">II", f.read(8))
        assert magic == 2049 and n2 == n, (magic, n2, n)
        labels = f.read(n)
    if os.path.isdir(TARGET):
        shutil.rmtree(TARGET)
    counts = [0] * 10
    for index, (image, label) in enumerate(zip(images, labels)):
        if counts[label] == PER_CLASS:
            continue
        counts[label] += 1
        folder = os.path.join(TARGET, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{index:05d}.png"), "wb") as out:
            out.write(png(cols, rows, image))
        if sum(counts) == 10 * PER_CLASS:
            break
    with open(LICENSE_SOURCE) as src, open(os.path.join(TARGET, "LICENSE"), "w") as dst:
        text = src.read()
        dst.write(f"Fashion-MNIST images: the first {PER_CLASS} test images of each class, as 28x28 greyscale PNG files in one folder\n"
                  "per class (file name = index in the test set), written by build/make-fashion-mnist-images.py from the Debian\n"
                  "package dataset-fashion-mnist.\n" + text[text.index("Source:"):])
    print(f"wrote {sum(counts)} images to {os.path.normpath(TARGET)}")


if __name__ == "__main__":
    sys.exit(main())
