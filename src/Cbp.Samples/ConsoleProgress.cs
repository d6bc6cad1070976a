using System;
using System.Collections.Generic;
using Microsoft.ML.Cbp;
using Spectre.Console;

namespace Cbp.Samples;

/// <summary>Progress bars for CBP training and batch scoring (Spectre.Console); plain lines when the output is not a terminal.</summary>
public static class ConsoleProgress
{
    /// <summary>
    /// Runs <paramref name="work"/> under two progress bars, float pre-training and CBP, fed by its training reports; the
    /// lines it logs are printed when it ends (writing under live bars would garble them).
    /// </summary>
    /// <typeparam name="T">The work's result.</typeparam>
    /// <param name="work">Receives a log and a progress callback.</param>
    public static T Training<T>(Func<Action<string>, Action<CbpProgressReport>, T> work)
    {
        var lines = new List<string>();
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            return work(Console.WriteLine, report =>
            {
                if (report.Epoch is not null && (report.Phase != CbpPhase.Cbp || report.EpochNumber % 4 == 0 || report.EpochNumber == report.Epochs))
                {
                    Console.WriteLine("  " + report);
                }
            });
        }
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var pretraining = context.AddTask("float pre-training", autoStart: false);
                var cbp = context.AddTask("CBP", autoStart: false);
                result = work(lines.Add, report =>
                {
                    var task = report.Phase == CbpPhase.Pretraining ? pretraining : report.Phase == CbpPhase.Cbp ? cbp : null;
                    if (task is null || report.Epochs == 0)
                    {
                        return;
                    }
                    task.StartTask();
                    task.MaxValue = report.Epochs;
                    double done = report.EpochNumber - 1 + (report.Batches > 0 ? (double)report.Batch / report.Batches : 0);
                    task.Value = report.Epoch is null ? done : report.EpochNumber;
                    if (report.Epoch is { } e)
                    {
                        string accuracy = e.ValidationAccuracy is double a ? $" acc {a:P1}" : "";
                        string constraint = report.Phase == CbpPhase.Cbp ? $" CFS/s {e.NormalizedCfs:F3} g {e.G}" : "";
                        task.Description = Markup.Escape($"{(report.Phase == CbpPhase.Cbp ? "CBP" : "float pre-training")}:{accuracy}{constraint}");
                    }
                    if (report.Phase == CbpPhase.Cbp)
                    {
                        pretraining.Value = pretraining.MaxValue;
                    }
                });
                pretraining.Value = pretraining.MaxValue;
                cbp.Value = cbp.MaxValue;
            });
        lines.ForEach(Console.WriteLine);
        return result;
    }

    /// <summary>Runs <paramref name="work"/> under one progress bar of rows.</summary>
    /// <typeparam name="T">The work's result.</typeparam>
    /// <param name="description">What the bar counts.</param>
    /// <param name="work">Receives a callback (rows done, rows in all).</param>
    public static T Rows<T>(string description, Func<Action<int, int>, T> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            return work((_, _) => { });
        }
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(description));
                result = work((done, total) =>
                {
                    task.MaxValue = Math.Max(1, total);
                    task.Value = done;
                });
                task.Value = task.MaxValue;
            });
        return result;
    }
}
