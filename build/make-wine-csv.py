#!/usr/bin/env python3
"""Writes src/Cbp.Samples/Data/wine/wine.csv, the tabular sample's data set, with named columns.

Source: the UCI Wine recognition data set (Forina et al.; UCI Machine Learning Repository, CC BY 4.0) as the
Debian package python3-sklearn ships it (sklearn/datasets/data/wine_data.csv). The script fetches that package
with 'apt-get download' (no installation needed) when WINE_DATA is not given.
"""
import csv, glob, os, subprocess, sys, tempfile

COLUMNS = ["Alcohol", "MalicAcid", "Ash", "AlcalinityOfAsh", "Magnesium", "TotalPhenols", "Flavanoids",
           "NonflavanoidPhenols", "Proanthocyanins", "ColorIntensity", "Hue", "OD280OD315", "Proline"]
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "Cbp.Samples", "Data", "wine", "wine.csv")


def source():
    if os.environ.get("WINE_DATA"):
        return os.environ["WINE_DATA"]
    work = tempfile.mkdtemp()
    subprocess.run(["apt-get", "download", "python3-sklearn"], cwd=work, check=True)
    deb = glob.glob(os.path.join(work, "python3-sklearn_*.deb"))[0]
    subprocess.run(["dpkg-deb", "-x", deb, os.path.join(work, "x")], check=True)
    return glob.glob(os.path.join(work, "x", "usr", "lib", "python3", "dist-packages", "sklearn", "datasets", "data", "wine_data.csv"))[0]


def main():
    with open(source(), newline="") as f:
        rows = list(csv.reader(f))[1:]
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    with open(TARGET, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS + ["Cultivar"])
        for row in rows:
            writer.writerow(row[:13] + [f"cultivar {int(row[13]) + 1}"])
    print(f"wrote {len(rows)} rows to {os.path.normpath(TARGET)}")


if __name__ == "__main__":
    sys.exit(main())
