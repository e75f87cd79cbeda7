// A real Dropwizard Metrics 4.2 registry served by its MetricsServlet on Jetty, for
// tests/integration/test_dropwizard_registry.py. Meters and timers run on a clock the test moves
// (GET /step), so the document stays the same between two fetches; the JVM's own attributes
// (uptime, name) are real.
import com.codahale.metrics.Clock;
import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.Meter;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.Timer;
import com.codahale.metrics.UniformReservoir;
import com.codahale.metrics.jvm.JvmAttributeGaugeSet;
import com.codahale.metrics.servlets.MetricsServlet;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class DropwizardRegistry {
  static final class ManualClock extends Clock {
    final AtomicLong nanos = new AtomicLong(TimeUnit.SECONDS.toNanos(1000));

    @Override
    public long getTick() {
      return nanos.get();
    }

    @Override
    public long getTime() {
      return TimeUnit.NANOSECONDS.toMillis(nanos.get());
    }
  }

  static final ManualClock CLOCK = new ManualClock();
  static final MetricRegistry REGISTRY = new MetricRegistry();
  static final Counter ACTIVE = REGISTRY.counter("requests.active");
  static final Counter BYTES = REGISTRY.counter("bytes.total");
  static final Meter HITS = REGISTRY.register("http.hits{route=/patients,method=GET}", new Meter(CLOCK));
  static final Meter RECORDS = REGISTRY.register("kafka.consumer[topic:orders,partition:3]", new Meter(CLOCK));
  static final Histogram SIZES = REGISTRY.register("response.sizes", new Histogram(new UniformReservoir()));
  static final Timer LATENCY = REGISTRY.register("http.latency[route=/patients]", new Timer(new UniformReservoir(), CLOCK));
  static int round = 0;

  static synchronized void step() {
    round++;
    ACTIVE.inc(round == 1 ? 7 : -2);
    BYTES.inc(round == 1 ? 9007199254740993L : 1024);
    for (int i = 0; i < 25 * round; i++) {
      HITS.mark();
      SIZES.update(100 + 7 * i);
      LATENCY.update(2 + (i % 11), TimeUnit.MILLISECONDS);
      CLOCK.nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(500));
    }
    RECORDS.mark(1000L * round);
  }

  public static void main(String[] args) throws Exception {
    REGISTRY.register("jvm.attribute", new JvmAttributeGaugeSet());
    REGISTRY.register("queue.depth", (Gauge<Integer>) () -> 17);
    REGISTRY.register("cache.hit.ratio", (Gauge<Double>) () -> 0.75);
    REGISTRY.register("cache.miss.ratio", (Gauge<Double>) () -> Double.NaN);  // Jackson writes "NaN"
    REGISTRY.register("kafka.topic=orders.partition=3.lag", (Gauge<Long>) () -> 4096L);
    step();
    Server server = new Server(0);
    ServletContextHandler context = new ServletContextHandler();
    context.setAttribute(MetricsServlet.METRICS_REGISTRY, REGISTRY);
    context.addServlet(new ServletHolder(new MetricsServlet()), "/metrics");
    context.addServlet(new ServletHolder(new HttpServlet() {
      @Override
      protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        step();
        resp.setContentType("text/plain");
        resp.getWriter().println("round " + round);
      }
    }), "/step");
    server.setHandler(context);
    server.start();
    int port = ((ServerConnector) server.getConnectors()[0]).getLocalPort();
    System.out.println("PORT " + port + " START " + ManagementFactory.getRuntimeMXBean().getStartTime());
    System.out.flush();
    server.join();
  }
}
