using System.Diagnostics;
using CsCheck;
using NUnit.Framework;

namespace CnmSharp.Testing;

/// <summary>
/// The hostile-input runs (docs/reliability.md, "Hostile input"): a CsCheck generator sampled a fixed number of times
/// from a fixed seed, so that a CI run is bounded and any failure is reproduced by its iteration number alone, and the
/// corpus of a parser (files under <c>Corpus/&lt;parser&gt;/</c> in the test project, copied to the output) replayed
/// before it. <c>CNMSHARP_FUZZ_SCALE=N</c> multiplies every count (a longer local hunt), <c>CNMSHARP_FUZZ_SEED</c>
/// moves the base seed; a failure names the seed and iteration and prints the input.
/// </summary>
public static class Fuzz
{
    private static readonly int s_scale = int.TryParse(Environment.GetEnvironmentVariable("CNMSHARP_FUZZ_SCALE"), out var s) && s > 0 ? s : 1;
    private static readonly ulong s_seedShift = ulong.TryParse(Environment.GetEnvironmentVariable("CNMSHARP_FUZZ_SEED"), out var seed) ? seed : 0;

    /// <summary>A single input never takes longer than this (a hang guard, not a timing assertion).</summary>
    public static readonly TimeSpan PerInputGuard = TimeSpan.FromSeconds(5);

    /// <summary>Samples <paramref name="gen"/> <paramref name="iterations"/> times (times the scale) from
    /// <paramref name="seed"/>, checking <paramref name="property"/> on each value.</summary>
    public static void Run<T>(Gen<T> gen, Action<T> property, int iterations, ulong seed, Func<T, string>? print = null)
    {
        ArgumentNullException.ThrowIfNull(gen);
        ArgumentNullException.ThrowIfNull(property);
        var count = iterations * s_scale;
        for (var i = 0; i < count; i++)
        {
            var value = Generate(gen, seed, i);
            var watch = Stopwatch.StartNew();
            try
            {
                property(value);
            }
            catch (Exception ex)
            {
                throw Failure(seed, i, Describe(value, print), ex);
            }

            if (watch.Elapsed > PerInputGuard)
            {
                throw Failure(seed, i, Describe(value, print), new TimeoutException($"one input took {watch.Elapsed}"));
            }
        }
    }

    /// <summary>The asynchronous form of <see cref="Run{T}"/>; each input is bounded by <see cref="PerInputGuard"/>.</summary>
    public static async Task RunAsync<T>(Gen<T> gen, Func<T, Task> property, int iterations, ulong seed, Func<T, string>? print = null)
    {
        ArgumentNullException.ThrowIfNull(gen);
        ArgumentNullException.ThrowIfNull(property);
        var count = iterations * s_scale;
        for (var i = 0; i < count; i++)
        {
            var value = Generate(gen, seed, i);
            try
            {
                await property(value).WaitAsync(PerInputGuard).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                throw Failure(seed, i, Describe(value, print), ex);
            }
        }
    }

    /// <summary>The corpus files of <paramref name="parser"/> (<c>Corpus/&lt;parser&gt;/*</c> in the output
    /// directory), as NUnit cases named after the file; fails when the folder is missing or empty.</summary>
    public static IEnumerable<TestCaseData> Corpus(string parser)
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "Corpus", parser);
        var files = Directory.Exists(directory) ? Directory.GetFiles(directory).OrderBy(f => f, StringComparer.Ordinal).ToArray() : [];
        if (files.Length == 0)
        {
            throw new InvalidOperationException($"no corpus in {directory}");
        }

        return files.Select(f => new TestCaseData(Path.GetFileName(f)).SetArgDisplayNames(parser + "/" + Path.GetFileName(f)));
    }

    /// <summary>The bytes of one corpus file.</summary>
    public static byte[] CorpusBytes(string parser, string file) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Corpus", parser, file));

    /// <summary>The corpus files' bytes, for a generator that mutates them.</summary>
    public static byte[][] CorpusAll(string parser)
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "Corpus", parser);
        return [.. Directory.GetFiles(directory).OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllBytes)];
    }

    /// <summary>Bytes mutated from one of <paramref name="seeds"/>: random bytes overwritten, a cut, or bytes
    /// inserted — the classic mutations that keep most of the structure and so reach deep parser states.</summary>
    public static Gen<byte[]> Mutations(byte[][] seeds) =>
        Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Select(Gen.Int, Gen.Byte).Array[0, 8], Gen.Int[0, 3], Gen.Int, Gen.Byte.Array[0, 16])
            .Select(t =>
            {
                var (which, writes, kind, where, insert) = t;
                var bytes = (byte[])seeds[which].Clone();
                foreach (var (at, value) in writes)
                {
                    if (bytes.Length > 0)
                    {
                        bytes[(int)((uint)at % (uint)bytes.Length)] = value;
                    }
                }

                var position = bytes.Length == 0 ? 0 : (int)((uint)where % (uint)(bytes.Length + 1));
                return kind switch
                {
                    1 => bytes[..position],
                    2 => [.. bytes[..position], .. insert, .. bytes[position..]],
                    _ => bytes,
                };
            });

    private static T Generate<T>(Gen<T> gen, ulong seed, int iteration) =>
        gen.Generate(new PCG(1, unchecked((seed + s_seedShift) * 0x9E3779B97F4A7C15UL + (ulong)iteration)), null, out _);

    private static string Describe<T>(T value, Func<T, string>? print)
    {
        var text = print is not null ? print(value) : value is byte[] bytes ? Convert.ToHexString(bytes) : Check.Print(value);
        return text.Length > 4000 ? text[..4000] + "..." : text;
    }

    private static AssertionException Failure(ulong seed, int iteration, string input, Exception ex) =>
        new($"seed {seed} (+{s_seedShift}), iteration {iteration}: {ex.GetType().Name}: {ex.Message}\ninput: {input}\n{ex}");
}
