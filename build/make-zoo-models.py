#!/usr/bin/env python3
"""Exports torchvision's classification families to ONNX, as PyTorch writes them, for the import-coverage tests.

Needs Debian's python3-torch, python3-torchvision and python3-onnx (apt-get install python3-torch
python3-torchvision python3-onnx; they install under /usr/bin/python3, not a pyenv python). Tests never
need Python: they read the reduced-width files this script commits.

  /usr/bin/python3 build/make-zoo-models.py reduced   # test/Microsoft.ML.Cbp.Tests/Models/zoo (committed)
  /usr/bin/python3 build/make-zoo-models.py full      # artifacts/zoo (the coverage benchmark; not committed)

Every family is exported at opsets 13 and 17 with a dynamic batch axis, random weights (torch's default
initialisation, seed 0), random batch-norm running statistics (so the normalisation is exercised) and no weight
left at zero (ViT's head) or near it (ConvNeXt's layer scale), so parity checks see every layer.

Reduced width: the same torchvision classes with every channel count divided by DIVISOR (and group counts
kept consistent), fewer blocks per stage where a family has them as a parameter, 10 classes and a smaller
input. The op pattern of each family is unchanged; the reduction per family is printed and recorded in
test/Microsoft.ML.Cbp.Tests/Models/zoo/README.md.
"""
import contextlib, math, os, sys

import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models import convnext, resnet, vision_transformer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OPSETS = (13, 17)
CLASSES_REDUCED = 10


@contextlib.contextmanager
def divided_channels(divisor):
    """Builds modules with every channel count c (c % divisor == 0) divided by divisor; keeps 3-channel inputs and 10 classes."""
    conv_init, bn_init, linear_init = nn.Conv2d.__init__, nn.BatchNorm2d.__init__, nn.Linear.__init__

    def f(c):
        return c // divisor if c % divisor == 0 and c >= divisor else c

    def conv(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, *args, **kwargs):
        new_in, new_out = f(in_channels), f(out_channels)
        if groups > 1:
            # Depthwise stays depthwise; otherwise keep as many groups as divide both counts.
            groups = new_in if groups == in_channels else math.gcd(math.gcd(groups, new_in), new_out)
        conv_init(self, new_in, new_out, kernel_size, stride, padding, dilation, groups, *args, **kwargs)

    def bn(self, num_features, *args, **kwargs):
        bn_init(self, f(num_features), *args, **kwargs)

    def linear(self, in_features, out_features, *args, **kwargs):
        linear_init(self, f(in_features), f(out_features), *args, **kwargs)

    nn.Conv2d.__init__, nn.BatchNorm2d.__init__, nn.Linear.__init__ = conv, bn, linear
    try:
        yield
    finally:
        nn.Conv2d.__init__, nn.BatchNorm2d.__init__, nn.Linear.__init__ = conv_init, bn_init, linear_init


def small_convnext(classes):
    cfg = convnext.CNBlockConfig
    return convnext.ConvNeXt([cfg(16, 32, 1), cfg(32, 64, 1), cfg(64, 128, 1), cfg(128, None, 1)], num_classes=classes)


def vit(image, patch, layers, heads, hidden, mlp, classes):
    return vision_transformer.VisionTransformer(image_size=image, patch_size=patch, num_layers=layers, num_heads=heads,
                                                hidden_dim=hidden, mlp_dim=mlp, num_classes=classes)


# name: (full constructor, input side), (reduced constructor, divisor or None, input side, what was reduced)
FAMILIES = {
    "resnet18": ((lambda: tvm.resnet18(), 224),
                 (lambda: resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1], num_classes=10), 8, 64, "channels /8, 1 block per stage")),
    "resnext50_32x4d": ((lambda: tvm.resnext50_32x4d(), 224),
                        (lambda: resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], groups=32, width_per_group=4, num_classes=10), 8, 64,
                         "channels /8 (groups 16 or fewer where the channels no longer divide by 32), 1 block per stage")),
    "wide_resnet50_2": ((lambda: tvm.wide_resnet50_2(), 224),
                        (lambda: resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], width_per_group=128, num_classes=10), 16, 64,
                         "channels /16, 1 block per stage")),
    "vgg11_bn": ((lambda: tvm.vgg11_bn(), 224),
                 (lambda: tvm.vgg11_bn(num_classes=10), 16, 224, "channels and classifier width /16 (224 input: the export needs it)")),
    "alexnet": ((lambda: tvm.alexnet(), 224),
                (lambda: tvm.alexnet(num_classes=10), 16, 224, "channels and classifier width /16 (224 input: the export needs it)")),
    "squeezenet1_1": ((lambda: tvm.squeezenet1_1(), 224),
                      (lambda: tvm.squeezenet1_1(num_classes=10), 8, 64, "channels /8")),
    "densenet121": ((lambda: tvm.densenet121(), 224),
                    (lambda: tvm.densenet.DenseNet(32, (2, 2, 2, 2), 64, num_classes=10), 8, 64, "channels /8, 2 layers per block")),
    "googlenet": ((lambda: tvm.googlenet(aux_logits=False, init_weights=True), 224),
                  (lambda: tvm.googlenet(num_classes=10, aux_logits=False, init_weights=True), 8, 64, "channels /8")),
    "mobilenet_v2": ((lambda: tvm.mobilenet_v2(), 224),
                     (lambda: tvm.mobilenet_v2(num_classes=10), 8, 64, "channels /8")),
    "mobilenet_v3_small": ((lambda: tvm.mobilenet_v3_small(), 224),
                           (lambda: tvm.mobilenet_v3_small(num_classes=10), 8, 64, "channels /8")),
    "mnasnet0_5": ((lambda: tvm.mnasnet0_5(), 224),
                   (lambda: tvm.mnasnet0_5(num_classes=10), 8, 64, "channels /8")),
    "shufflenet_v2_x0_5": ((lambda: tvm.shufflenet_v2_x0_5(), 224),
                           (lambda: tvm.shufflenet_v2_x0_5(num_classes=10), 8, 64, "channels /8")),
    "efficientnet_b0": ((lambda: tvm.efficientnet_b0(), 224),
                        (lambda: tvm.efficientnet_b0(num_classes=10), 8, 64, "channels /8")),
    "regnet_y_400mf": ((lambda: tvm.regnet_y_400mf(), 224),
                       (lambda: tvm.regnet_y_400mf(num_classes=10), 8, 64, "channels /8")),
    "convnext_tiny": ((lambda: tvm.convnext_tiny(), 224),
                      (lambda: small_convnext(10), None, 64, "widths 16-32-64-128, 1 block per stage")),
    # A small ViT (ViT-Ti/16: 12 layers, 3 heads, width 192); torchvision's smallest, vit_b_16, is 86M parameters.
    "vit_tiny_16": ((lambda: vit(224, 16, 12, 3, 192, 768, 1000), 224),
                    (lambda: vit(32, 8, 2, 2, 32, 64, 10), None, 32, "2 layers, 2 heads, width 32, 32x32 input, 8x8 patches")),
}


def randomise_zero_inits(model):
    """torchvision starts some weights at zero (ViT's head) or near it (ConvNeXt's layer scale), which would make parity trivial."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_scale" in name:
                p.uniform_(0.05, 0.2)
            elif p.dim() >= 2 and not p.any():
                p.normal_(0, 0.02)


def randomise_batch_norm(model):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def export(name, make, side, directory, divisor=None):
    torch.manual_seed(0)
    with divided_channels(divisor) if divisor else contextlib.nullcontext():
        model = make()
    randomise_batch_norm(model)
    randomise_zero_inits(model)
    model.eval()
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        model(x)  # fails here, not in the exporter, when the reduction broke the model
    parameters = sum(p.numel() for p in model.parameters())
    for opset in OPSETS:
        path = os.path.join(directory, f"{name}-op{opset}.onnx")
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        print(f"{path}: {parameters:,} parameters, input 3x{side}x{side}, {os.path.getsize(path):,} bytes", flush=True)


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "reduced"
    only = set(sys.argv[2:])
    if kind == "full":
        directory = os.path.join(ROOT, "artifacts", "zoo")
    elif kind == "reduced":
        directory = os.path.join(ROOT, "test", "Microsoft.ML.Cbp.Tests", "Models", "zoo")
    else:
        sys.exit("usage: make-zoo-models.py reduced|full [family ...]")
    os.makedirs(directory, exist_ok=True)
    lines = []
    for name, (full, reduced) in FAMILIES.items():
        if only and name not in only:
            continue
        if kind == "full":
            export(name, full[0], full[1], directory)
        else:
            make, divisor, side, how = reduced
            export(name, make, side, directory, divisor)
            lines.append(f"| {name} | {how} | 3x{side}x{side} |")
    if kind == "reduced" and not only:
        with open(os.path.join(directory, "README.md"), "w") as f:
            f.write("# Reduced-width torchvision models\n\nWritten by `build/make-zoo-models.py reduced` (torch 1.13.1, torchvision 0.14.1,"
                    " Debian bookworm); random weights, seed 0, 10 classes, each at opsets 13 and 17.\n"
                    "The op pattern of each family is torchvision's; only widths and depths are reduced.\n\n"
                    "| family | reduction | input |\n|---|---|---|\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
