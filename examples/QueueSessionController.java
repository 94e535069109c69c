import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import net.dv8tion.jda.api.utils.SessionControllerAdapter;

/** JDA: {@code builder.setSessionController(new QueueSessionController(QUEUE_URL, token))}. */
public final class QueueSessionController extends SessionControllerAdapter {
    private final HttpClient http = HttpClient.newHttpClient();
    private final String url;
    private final String token;

    public QueueSessionController(String url, String token) {
        this.url = url;
        this.token = token;
    }

    @Override
    public void appendSession(SessionConnectNode node) {
        int shard = node.getShardInfo().getShardId();
        var request = HttpRequest.newBuilder(URI.create(url + "?shard=" + shard))
                .header("Authorization", "Bot " + token)
                .build();
        new Thread(() -> {
            try {
                while (true) {
                    long waitSeconds = 1;
                    try {
                        var response = http.send(request, HttpResponse.BodyHandlers.ofString());
                        if (response.statusCode() == 200) {
                            node.run(false);
                            return;
                        }
                        if (response.statusCode() != 429 && response.statusCode() != 503) {
                            System.err.println("identify queue: " + response.statusCode() + " " + response.body());
                            return;
                        }
                        waitSeconds = response.headers().firstValueAsLong("Retry-After").orElse(1);
                    } catch (IOException e) {
                        // The queue is unreachable: try again in a second.
                    }
                    Thread.sleep(waitSeconds * 1000);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "identify-queue-" + shard).start();
    }
}
