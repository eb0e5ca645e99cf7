using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Text;

namespace MilterSecureList.Directory.Storage;

/// <summary>
/// One multi-row <c>INSERT ... VALUES (...), (...)</c>: the bulk path's way to write many rows in
/// one round trip with SQL that SQLite and PostgreSQL both accept. Parameters are named
/// <c>@rROWcCOLUMN</c> and typed up front, so PostgreSQL never has to guess a NULL's type.
/// </summary>
internal sealed class RowBatch : IDisposable
{
    private readonly int _columns;

    /// <summary>PREFIX, ROWS tuples of COLUMNS parameters, SUFFIX.</summary>
    public RowBatch(DbConnection connection, DbTransaction transaction, string prefix, string suffix, IReadOnlyList<DbType> columns, int rows)
    {
        _columns = columns.Count;
        Command = connection.CreateCommand();
        Command.Transaction = transaction;
        var sql = new StringBuilder(prefix, prefix.Length + suffix.Length + (rows * columns.Count * 10));
        for (int row = 0; row < rows; row++)
        {
            sql.Append(row == 0 ? "(" : ", (");
            for (int column = 0; column < columns.Count; column++)
            {
                string name = string.Create(CultureInfo.InvariantCulture, $"r{row}c{column}");
                sql.Append(column == 0 ? "@" : ", @").Append(name);
                DbParameter parameter = Command.CreateParameter();
                parameter.ParameterName = name;
                parameter.DbType = columns[column];
                Command.Parameters.Add(parameter);
            }

            sql.Append(')');
        }

        Command.CommandText = sql.Append(suffix).ToString();
    }

    public DbCommand Command { get; }

    /// <summary>Sets ROW's COLUMN (null: SQL NULL).</summary>
    public void Set(int row, int column, object? value) =>
        Command.Parameters[(row * _columns) + column].Value = value ?? DBNull.Value;

    public void Dispose() => Command.Dispose();
}
