// Writes atomic commits to the SQLite store at args[0] until killed. Each commit i writes the same value to the two
// keys of pair (i % Pairs) and to crash/last; the value is i followed by filler, so a commit spans several pages.
// Every third commit is durable, the others relaxed (only Tiered tells them apart).
// After each acknowledged commit it prints i on its own line; the crash test kills it with SIGKILL at a random point.
using System.Globalization;
using System.Text;
using CnmSharp.Store;

if (args.Length < 1)
{
    Console.Error.WriteLine("usage: CnmSharp.StoreCrashWriter <database file> [ProcessCrash|PowerLoss|Tiered]");
    return 2;
}

const int Pairs = 16;
const int Filler = 3000;
var durability = args.Length > 1 ? Enum.Parse<SqliteDurability>(args[1]) : SqliteDurability.ProcessCrash;
await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = args[0], Durability = durability });

var last = await store.GetAsync("crash/last");
var i = last is null ? 0L : long.Parse(Encoding.ASCII.GetString(last.Value.Span).Split(' ')[0], CultureInfo.InvariantCulture);
Console.WriteLine($"start {i}");

var filler = new string('.', Filler);
while (true)
{
    i++;
    var value = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{i} {filler}"));
    var pair = string.Create(CultureInfo.InvariantCulture, $"crash/pair/{i % Pairs:D2}");
    await store.CommitAsync(
    [
        StoreOperation.Put(pair + "/a", value),
        StoreOperation.Put(pair + "/b", value),
        StoreOperation.Put("crash/last", value),
    ],
    i % 3 == 0 ? StoreDurability.Durable : StoreDurability.Relaxed); // Tiered: a mix of FULL and NORMAL commits

    Console.WriteLine(i.ToString(CultureInfo.InvariantCulture));
}
