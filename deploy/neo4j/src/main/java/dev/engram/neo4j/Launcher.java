package dev.engram.neo4j;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Transaction;
import org.neo4j.io.ByteUnit;

/**
 * Runs Neo4j Community embedded with its Bolt connector on a loopback address.
 *
 * <p>Settings come from the environment so the Makefile and CI can configure it without
 * editing files: NEO4J_BOLT_HOST (127.0.0.1), NEO4J_BOLT_PORT (7687), NEO4J_DATA_DIR
 * (./var/neo4j), NEO4J_USER (neo4j), NEO4J_PASSWORD (engram-dev-password), NEO4J_PAGECACHE
 * (512m), NEO4J_TX_LOG_RETENTION (512M size). The launcher exits non-zero with a one-line cause
 * when it cannot start.
 *
 * <p>Transaction logs: Neo4j keeps two days of them by default, which is what a backup or a
 * cluster member catching up needs. This Neo4j serves development and tests, whose graph the
 * event log can rebuild at any time; a day of tests wrote 20 GB of logs beside a 2.5 GB store.
 * It keeps 512 MB of them (pruned at each checkpoint), unless NEO4J_TX_LOG_RETENTION says
 * otherwise in Neo4j's own form ("2 days", "1G size", "keep_all").
 */
public final class Launcher {
  private Launcher() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> env = System.getenv();
    String host = env.getOrDefault("NEO4J_BOLT_HOST", "127.0.0.1");
    int port = Integer.parseInt(env.getOrDefault("NEO4J_BOLT_PORT", "7687"));
    Path dataDir = Path.of(env.getOrDefault("NEO4J_DATA_DIR", "var/neo4j")).toAbsolutePath();
    String user = env.getOrDefault("NEO4J_USER", "neo4j");
    String password = env.getOrDefault("NEO4J_PASSWORD", "engram-dev-password");
    String pageCache = env.getOrDefault("NEO4J_PAGECACHE", "512m");
    String txLogRetention = setting(env, "NEO4J_TX_LOG_RETENTION", "512M size");

    if (password.length() < 8) {
      fail("NEO4J_PASSWORD must be at least 8 characters (Neo4j's minimum)");
    }
    if (!"neo4j".equals(user)) {
      fail("NEO4J_USER must be neo4j: Community edition's embedded launcher manages only the default user");
    }
    try (ServerSocket probe = new ServerSocket()) {
      probe.setReuseAddress(true);
      probe.bind(new InetSocketAddress(host, port));
    } catch (IOException e) {
      fail("port " + host + ":" + port + " is already in use; stop what holds it or set NEO4J_BOLT_PORT");
    }

    Files.createDirectories(dataDir);
    DatabaseManagementService dbms;
    try {
      dbms =
          new DatabaseManagementServiceBuilder(dataDir)
              .setConfig(BoltConnector.enabled, true)
              .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
              .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
              .setConfig(HttpConnector.enabled, false)
              .setConfig(GraphDatabaseSettings.auth_enabled, true)
              .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.parse(pageCache))
              .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(5))
              .setConfig(GraphDatabaseSettings.keep_logical_logs, txLogRetention)
              .build();
    } catch (IllegalArgumentException e) {
      // Neo4j's own words name the setting and the value it refused.
      fail("bad setting: " + e.getMessage());
      return;
    }

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  dbms.shutdown();
                  stopped.countDown();
                },
                "neo4j-shutdown"));

    setPassword(dbms, user, password);
    Files.writeString(
        dataDir.resolve("launcher.ready"),
        "bolt://" + host + ":" + port + "\n",
        StandardCharsets.UTF_8);
    System.out.println("engram-neo4j ready bolt://" + host + ":" + port + " data=" + dataDir);
    System.out.flush();
    stopped.await();
  }

  // The default user starts with password "neo4j" and a forced change; set the configured
  // password on the system database so clients can log in with it straight away.
  private static void setPassword(DatabaseManagementService dbms, String user, String password) {
    GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
    try (Transaction tx = system.beginTx()) {
      tx.execute(
              "ALTER USER " + user + " SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED",
              Map.of("pw", password))
          .close();
      tx.commit();
    } catch (RuntimeException e) {
      // Setting the same password again is refused; that is fine on a restart.
      if (!String.valueOf(e.getMessage()).contains("Old password and new password cannot be the same")) {
        throw e;
      }
    }
  }

  // setting is the environment's value of name, or fallback when it is unset or blank.
  private static String setting(Map<String, String> env, String name, String fallback) {
    String value = env.get(name);
    return value == null || value.isBlank() ? fallback : value.trim();
  }

  private static void fail(String message) {
    System.err.println("engram-neo4j: " + message);
    System.exit(2);
  }
}
