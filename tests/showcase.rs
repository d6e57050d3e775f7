//! The windowed showcase example, played unattended under Xvfb with software Vulkan: it must
//! draw its arena, and the enemies its scripts steer must move from where they started.
//!
//! Needs `xvfb-run` and a Vulkan driver (Debian: `apt-get install xvfb mesa-vulkan-drivers`);
//! `.ci/run` installs both. Without them the test says so and passes without running.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/examples/showcase`, which `cargo test` builds along with the tests.
fn example_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    profile_dir.join("examples").join("showcase")
}

fn has_display_stack() -> bool {
    let found = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    found("xvfb-run") && Path::new("/usr/share/vulkan/icd.d").exists()
}

/// Plays `frames` frames and returns the screenshot of the last one.
fn play(frames: u32, dir: &Path) -> Image {
    let shot = dir.join(format!("frame-{frames}.png"));
    let output = Command::new("timeout")
        .arg("300")
        .args(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24"])
        .arg(example_binary())
        .args(["--frames", &frames.to_string(), "--screenshot"])
        .arg(&shot)
        .env("BEVY_ASSET_ROOT", env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the showcase under xvfb-run");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the showcase failed:\n{log}");
    assert!(
        log.contains(&format!("after {frames} frames: Alice health")),
        "no game state printed:\n{log}"
    );
    assert!(!log.contains("ERROR"), "errors while playing:\n{log}");
    Image::read(&shot)
}

struct Image {
    width: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let file = std::fs::File::open(path).expect("the screenshot was saved");
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("PNG data");
        let channels = info.color_type.samples();
        let rgb = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|px| [px[0], px[1], px[2]])
            .collect();
        Image {
            width: info.width as usize,
            rgb,
        }
    }

    /// Positions of the pixels `matches` accepts.
    fn pixels(&self, matches: impl Fn([u8; 3]) -> bool) -> Vec<(f64, f64)> {
        self.rgb
            .iter()
            .enumerate()
            .filter(|(_, px)| matches(**px))
            .map(|(i, _)| ((i % self.width) as f64, (i / self.width) as f64))
            .collect()
    }
}

/// The enemies' red and the player's green (see `assets/scripts/`).
fn enemy([r, g, b]: [u8; 3]) -> bool {
    r > 180 && g < 140 && b < 140
}

fn player([r, g, b]: [u8; 3]) -> bool {
    g > 180 && r < 150 && b < 170
}

fn centroid(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (x, y) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    (x / n, y / n)
}

/// Mean distance of the enemy pixels from the player.
fn enemy_distance(image: &Image) -> f64 {
    let player = centroid(&image.pixels(player));
    let enemies = image.pixels(enemy);
    enemies
        .iter()
        .map(|(x, y)| (x - player.0).hypot(y - player.1))
        .sum::<f64>()
        / enemies.len() as f64
}

#[test]
fn the_showcase_draws_and_its_scripts_move_the_enemies() {
    if !has_display_stack() {
        eprintln!(
            "skipped: no xvfb-run or Vulkan driver here (apt-get install xvfb mesa-vulkan-drivers)"
        );
        return;
    }
    assert!(
        example_binary().exists(),
        "{} is missing: `cargo test --workspace` builds it, `cargo test --test showcase` alone does not (run `cargo build --example showcase` first)",
        example_binary().display()
    );
    let dir = tempfile::tempdir().unwrap();
    // The first frames of a new window can be blank: the "start" is a little later.
    let start = play(30, dir.path());
    let later = play(240, dir.path());

    for (name, image) in [("start", &start), ("later", &later)] {
        let background = image.rgb[0];
        let drawn = image.rgb.iter().filter(|px| **px != background).count();
        assert!(
            drawn > 2_000,
            "{name}: the frame is blank ({drawn} pixels drawn)"
        );
        assert!(image.pixels(player).len() > 500, "{name}: no player sprite");
        assert!(
            image.pixels(enemy).len() > 4 * 300,
            "{name}: fewer than 4 enemy sprites"
        );
    }
    let (before, after) = (enemy_distance(&start), enemy_distance(&later));
    assert!(
        after < before - 100.0,
        "the enemies did not close in on the player: {before:.0} px then {after:.0} px"
    );
}
